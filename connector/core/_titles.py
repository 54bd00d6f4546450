"""Job titles to seniority and function (pure helpers)."""

from __future__ import annotations

import re

from connector.core.models import JobFunction, Seniority

# Checked in order: the first pattern that matches wins ("Vice President" before
# "President", "Assistant to the CEO" is not c-level).
_SENIORITY: tuple[tuple[Seniority, re.Pattern[str]], ...] = (
    ("individual", re.compile(r"\b(assistant|associate|intern|trainee|coordinator) (to|of)\b")),
    ("vp", re.compile(r"\b(vp|svp|evp|avp|vice[- ]president|vice[- ]pres)\b")),
    ("c_level", re.compile(
        r"\b(ceo|cfo|cto|coo|cmo|cio|ciso|cro|cpo|cco|cdo|chief|founder|co-?founder|president|"
        r"owner|managing partner|managing director|general partner|geschäftsführer|md)\b")),
    ("director", re.compile(r"\b(director|head|dir)\b")),
    ("manager", re.compile(r"\b(manager|mgr|lead|leader|supervisor|team lead|principal)\b")),
)

_FUNCTION: tuple[tuple[JobFunction, re.Pattern[str]], ...] = (
    ("executive", re.compile(
        r"\b(ceo|founder|co-?founder|(?<!vice )(?<!vice-)president|owner|managing director|general manager|"
        r"managing partner|chief executive|geschäftsführer|md)\b")),
    ("finance", re.compile(r"\b(cfo|finance|financial|accounting|accountant|controller|treasury|fp&a)\b")),
    ("it", re.compile(r"\b(cio|ciso|it|information technology|information security|infosec|"
                      r"sysadmin|system administrator|systems|infrastructure|helpdesk|network)\b")),
    ("engineering", re.compile(r"\b(cto|engineer|engineering|developer|software|devops|r&d|"
                               r"architect|programmer|technical)\b")),
    ("hr", re.compile(r"\b(chro|hr|human resources|people|talent|recruiter|recruiting)\b")),
    ("operations", re.compile(r"\b(coo|operations|ops|revops|supply chain|logistics|procurement)\b")),
    ("marketing", re.compile(r"\b(cmo|marketing|growth|demand gen|demand generation|brand|"
                             r"content|communications|seo|campaigns?)\b")),
    ("sales", re.compile(r"\b(cro|sales|account executive|ae|business development|bdr|sdr|"
                         r"revenue|account manager|partnerships|commercial)\b")),
)


def clean_title(raw: str) -> str:
    """Return the title trimmed with whitespace collapsed."""
    return re.sub(r"\s+", " ", raw).strip()


def seniority_of(title: str | None) -> Seniority:
    """Return the seniority implied by a job title (``unknown`` when empty)."""
    if not title or not title.strip():
        return "unknown"
    text = title.lower()
    for level, pattern in _SENIORITY:
        if pattern.search(text):
            return level
    return "individual"


def function_of(title: str | None) -> JobFunction:
    """Return the job function implied by a job title (``other`` when unclear)."""
    if not title:
        return "other"
    text = title.lower()
    for function, pattern in _FUNCTION:
        if pattern.search(text):
            return function
    return "other"
