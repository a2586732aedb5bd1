"""Small local data files in the formats of lm-eval 0.4.13's own tasks (what the hub datasets hold), for
the ``covbench wrap`` tests: gsm8k (openai/gsm8k), arc_easy (allenai/ai2_arc), mmlu_anatomy (cais/mmlu),
triviaqa (mandarjoshi/trivia_qa, rc.nocontext: only the fields the task reads)."""

from __future__ import annotations

import json
from pathlib import Path

from covbench.taskmeta import TASKS_DIR

GSM8K = TASKS_DIR / "gsm8k_cov" / "data"  # the shipped gsm8k-format examples (tests copy their rows)

ARC = [
    {"id": "a1", "question": "Which gas do plants take in to make food?",
     "choices": {"text": ["oxygen", "carbon dioxide", "nitrogen", "helium"], "label": ["A", "B", "C", "D"]},
     "answerKey": "B"},
    {"id": "a2", "question": "What is the boiling point of water at sea level?",
     "choices": {"text": ["50 C", "100 C", "150 C"], "label": ["A", "B", "C"]}, "answerKey": "B"},
    {"id": "a3", "question": "Which object is a magnet most likely to attract?",
     "choices": {"text": ["a wooden spoon", "a glass cup", "an iron nail", "a rubber ball"],
                 "label": ["1", "2", "3", "4"]}, "answerKey": "3"},
]

MMLU = [
    {"question": "Which bone protects the brain?", "subject": "anatomy",
     "choices": ["femur", "skull", "rib", "tibia"], "answer": 1},
    {"question": "How many chambers does the human heart have?", "subject": "anatomy",
     "choices": ["two", "three", "four", "five"], "answer": 2},
    {"question": "Which organ produces insulin?", "subject": "anatomy",
     "choices": ["pancreas", "liver", "kidney", "spleen"], "answer": 0},
]
MMLU_DEV = [{"question": "Which organ pumps blood?", "subject": "anatomy",
             "choices": ["lung", "heart", "brain", "skin"], "answer": 1}]

TRIVIAQA = [
    {"question": "Which planet is known as the Red Planet", "question_id": "t1",
     "answer": {"aliases": ["Mars", "Planet Mars"], "value": "Mars"}},
    {"question": "Who wrote Hamlet", "question_id": "t2",
     "answer": {"aliases": ["William Shakespeare", "Shakespeare"], "value": "William Shakespeare"}},
    {"question": "What is the capital of France", "question_id": "t3",
     "answer": {"aliases": ["Paris"], "value": "Paris"}},
]
TRIVIAQA_TRAIN = [{"question": "What colour is the sky", "question_id": "t0",
                   "answer": {"aliases": ["Blue"], "value": "Blue"}}]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
