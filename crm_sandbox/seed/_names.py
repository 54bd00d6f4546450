"""Curated person names from several cultures, nicknames and job titles.

The lists are small on purpose (a few hundred names): real CRMs are full of
people who share a first name or a surname, and dedupe must cope with that.
"""

from __future__ import annotations

_FIRST = {
    "anglo": (
        "James John Robert Michael William David Richard Joseph Thomas Charles Christopher "
        "Daniel Matthew Anthony Mark Steven Andrew Joshua Kevin Brian George Edward Ryan "
        "Jacob Gary Nicholas Eric Jonathan Stephen Benjamin Samuel Patrick Alexander Peter "
        "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Nancy Lisa "
        "Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah "
        "Stephanie Rebecca Laura Sharon Cynthia Kathleen Amy Angela Anna Rachel Katherine "
        "Samantha Christine Emma Olivia Hannah Megan Victoria Abigail Charlotte Lucy"
    ),
    "hispanic": (
        "José Luis Carlos Juan Miguel Alejandro Diego Javier Fernando Ricardo Andrés Pablo "
        "Sergio Jorge Manuel María Carmen Ana Lucía Sofía Isabel Valentina Camila Gabriela "
        "Daniela Paula Elena Marta Rosa Adriana"
    ),
    "german": (
        "Lukas Jonas Felix Maximilian Paul Leon Tobias Florian Stefan Matthias Jürgen Klaus "
        "Wolfgang Andreas Markus Anna Lena Julia Katharina Sabine Ursula Petra Monika Birgit "
        "Franziska Johanna Annika Greta"
    ),
    "french": (
        "Jean Pierre Louis Antoine Nicolas Julien Mathieu Thomas Hugo Étienne François Camille "
        "Chloé Manon Léa Juliette Élodie Margaux Amélie Céline Nathalie Sandrine Aurélie"
    ),
    "dutch": "Daan Sem Bram Thijs Joost Pieter Ruben Sanne Fleur Eva Lotte Femke Anouk Maartje",
    "nordic": "Erik Lars Anders Johan Nils Magnus Søren Astrid Ingrid Freja Sigrid Elin Maja Karin",
    "italian": "Marco Luca Giovanni Alessandro Matteo Francesco Giulia Chiara Francesca Alessia Martina",
    "indian": (
        "Aarav Vivek Rahul Rohan Arjun Sanjay Vikram Amit Rajesh Anil Suresh Karthik Aditya "
        "Priya Ananya Divya Kavya Neha Pooja Sneha Lakshmi Meera Shreya Deepa Aishwarya"
    ),
    "chinese": "Wei Jun Hao Ming Lei Jian Yong Tao Li Fang Jing Xin Mei Ling Yan Hui",
    "japanese": (
        "Haruto Yuto Sota Riku Takumi Daiki Kaito Shota Yuki Sakura Yui Aoi Hana Mei Rin "
        "Misaki Nanami Ayaka"
    ),
    "portuguese": "João Pedro Gabriel Rafael Thiago Bruno Mariana Beatriz Larissa Fernanda Juliana",
    "african": "Thabo Sipho Themba Kagiso Bongani Lerato Naledi Nomvula Zanele Ayanda",
}

_LAST = {
    "anglo": (
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
        "Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
        "Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips "
        "Evans Turner Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper "
        "Peterson Bailey Reed Kelly Howard Ward Cox Richardson Wood Watson Brooks Bennett Gray "
        "Hughes Price Sanders Myers Long Ross Foster O'Brien McDonald Fitzgerald Sullivan"
    ),
    "hispanic": (
        "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres "
        "Flores Rivera Gómez Díaz Reyes Morales Cruz Ortiz Gutiérrez Chávez Ramos Ruiz Vargas "
        "Castillo Jiménez Moreno"
    ),
    "german": (
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch "
        "Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hartmann Lange "
        "Werner Krause Lehmann"
    ),
    "french": (
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
        "Lefebvre Michel Garcia Fontaine Rousseau Vincent Mercier Girard Bonnet Lambert"
    ),
    "dutch": "de Jong Jansen de Vries van den Berg van Dijk Bakker Visser Smit Meijer de Boer Mulder Bos",
    "nordic": "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsen Hansen Jensen Nielsen Lindqvist",
    "italian": "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti",
    "indian": (
        "Sharma Patel Singh Kumar Gupta Reddy Iyer Nair Rao Joshi Mehta Shah Desai Menon "
        "Chatterjee Banerjee Krishnan Pillai Verma Agarwal Malhotra Kapoor"
    ),
    "chinese": "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Lin Tan Lim Ng",
    "japanese": (
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida "
        "Yamada Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu"
    ),
    "portuguese": "Silva Santos Oliveira Souza Pereira Costa Carvalho Almeida Ferreira Ribeiro Gomes Lima",
    "african": "Dlamini Nkosi Ndlovu Khumalo Mokoena Mahlangu van der Merwe Botha Naidoo Pretorius",
}


def _split(text: str, multiword: bool = False) -> tuple[str, ...]:
    if not multiword:
        return tuple(text.split())
    # "de Jong", "van den Berg", "van der Merwe": particles stick to the next word
    words: list[str] = []
    pending = ""
    for word in text.split():
        if word in {"de", "van", "den", "der"}:
            pending = f"{pending} {word}".strip()
            continue
        words.append(f"{pending} {word}".strip())
        pending = ""
    return tuple(words)


FIRST_NAMES: dict[str, tuple[str, ...]] = {k: _split(v) for k, v in _FIRST.items()}
LAST_NAMES: dict[str, tuple[str, ...]] = {k: _split(v, multiword=True) for k, v in _LAST.items()}

#: Which cultures people in a country are drawn from, with weights.
CULTURES_BY_COUNTRY: dict[str, tuple[tuple[str, int], ...]] = {
    "US": (("anglo", 62), ("hispanic", 12), ("indian", 8), ("chinese", 7), ("german", 3),
           ("italian", 3), ("japanese", 2), ("african", 3)),
    "CA": (("anglo", 65), ("french", 20), ("chinese", 8), ("indian", 7)),
    "MX": (("hispanic", 100),),
    "GB": (("anglo", 78), ("indian", 12), ("chinese", 4), ("african", 6)),
    "IE": (("anglo", 100),),
    "DE": (("german", 88), ("italian", 4), ("anglo", 4), ("nordic", 4)),
    "FR": (("french", 92), ("hispanic", 4), ("italian", 4)),
    "NL": (("dutch", 90), ("german", 5), ("anglo", 5)),
    "ES": (("hispanic", 100),),
    "IT": (("italian", 100),),
    "SE": (("nordic", 100),),
    "JP": (("japanese", 100),),
    "AU": (("anglo", 80), ("chinese", 10), ("indian", 10)),
    "SG": (("chinese", 70), ("indian", 20), ("anglo", 10)),
    "IN": (("indian", 100),),
    "BR": (("portuguese", 95), ("japanese", 5)),
    "ZA": (("african", 70), ("anglo", 30)),
}

#: Nicknames people use for themselves in one system and not in the other.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Liza"),
    "Richard": ("Rick", "Dick", "Rich"),
    "Michael": ("Mike",),
    "James": ("Jim", "Jimmy"),
    "Joseph": ("Joe",),
    "Thomas": ("Tom",),
    "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Anthony": ("Tony",),
    "Steven": ("Steve",),
    "Stephen": ("Steve",),
    "Andrew": ("Andy", "Drew"),
    "Nicholas": ("Nick",),
    "Jonathan": ("Jon",),
    "Benjamin": ("Ben",),
    "Samuel": ("Sam",),
    "Alexander": ("Alex",),
    "Edward": ("Ed", "Ted"),
    "Patrick": ("Pat",),
    "Jennifer": ("Jen", "Jenny"),
    "Katherine": ("Kate", "Katie"),
    "Kathleen": ("Kathy",),
    "Margaret": ("Maggie", "Peggy"),
    "Patricia": ("Patty", "Trish"),
    "Rebecca": ("Becky",),
    "Samantha": ("Sam",),
    "Victoria": ("Vicky", "Tori"),
    "Deborah": ("Debbie",),
    "Abigail": ("Abby",),
    "Susan": ("Sue",),
    "Kimberly": ("Kim",),
    "Christine": ("Chris",),
    "Maximilian": ("Max",),
    "Alejandro": ("Alex",),
    "Alessandro": ("Alex",),
    "Francesco": ("Franco",),
    "Johanna": ("Hanna",),
}

# (title, seniority, function) — the clean form; messiness derives the rest.
TITLES_BY_LEVEL: dict[str, tuple[str, ...]] = {
    "c_level": (
        "CEO", "CEO & Founder", "Co-Founder", "CTO", "CFO", "COO", "CMO", "Chief Revenue Officer",
        "Chief Operating Officer", "Chief Information Officer", "Managing Director",
    ),
    "vp": (
        "VP of Sales", "VP Marketing", "Vice President of Operations", "VP Engineering",
        "VP Revenue Operations", "SVP Sales", "VP of Finance", "VP Customer Success",
    ),
    "director": (
        "Director of Sales Operations", "Head of Marketing", "Director of IT",
        "Head of Revenue Operations", "Director of Demand Generation", "Head of Sales",
        "Director of Engineering", "Finance Director", "Head of People",
    ),
    "manager": (
        "Sales Manager", "Marketing Manager", "RevOps Manager", "IT Manager",
        "Marketing Operations Manager", "Operations Manager", "Engineering Manager",
        "HR Manager", "Sales Operations Manager", "Product Manager",
    ),
    "individual": (
        "Account Executive", "Sr. Software Engineer", "Software Engineer", "Marketing Specialist",
        "Sales Development Representative", "Business Analyst", "Data Analyst", "Consultant",
        "Marketing Coordinator", "Accountant", "Recruiter", "Office Administrator",
        "Customer Support Specialist", "Student", "Intern",
    ),
}

#: How often each seniority occurs among inbound people (most are individual contributors).
LEVEL_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("c_level", 8), ("vp", 9), ("director", 15), ("manager", 24), ("individual", 44),
)
