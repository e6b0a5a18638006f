"""Answers: what the bot says, composed from the retrieved passages.

    answers.py       Answer, Citation, Turn; safe URLs and printable text for every front end
    plan.py          what an answer must contain, read from the question before any sentence is chosen
    conversation.py  follow-up questions made standalone, and the history budget
    extractive/      the default answerer: quoted sentences, each cited [n]
    llm/             optional answers from a language model, checked against the passages
"""
