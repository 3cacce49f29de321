#!/usr/bin/env python3
"""make_travel.py — the "where is this traveller going?" datasets.

Each record is one sentence about a trip, written from varied templates with
a start city, a destination and sometimes a stopover, and the question
"Which city is the traveller going to?". The answer is just the destination's
name, so a script can score a model by exact match (tutorials/data/score.lua).
A small instruct model tends to answer in a sentence, or picks the first city
it sees; a short LoRA fine-tune teaches it the format and the reading.

Written for stepwise; deterministic (fixed seed): rerun it and the files come
out byte for byte the same.

    python3 tutorials/data/make_travel.py        # writes next to this script

Outputs (600 train / 100 eval records; no sentence appears in both):
    travel_train.jsonl, travel_eval.jsonl    messages format (JSONL)
    travel_train.json,  travel_eval.json     alpaca format (one JSON array)
"""
import json
import pathlib
import random

SEED = 20250611
N_TRAIN, N_EVAL = 600, 100
QUESTION = "Which city is the traveller going to? Answer with just the city name."

CITIES = [
    "Lisbon", "Oslo", "Cairo", "Lima", "Berlin", "Vienna", "Dubai", "Mumbai", "Toronto", "Nairobi",
    "Santiago", "Hanoi", "Seoul", "Osaka", "Madrid", "Prague", "Dublin", "Athens", "Istanbul", "Warsaw",
    "Helsinki", "Stockholm", "Copenhagen", "Amsterdam", "Brussels", "Zurich", "Milan", "Naples", "Porto",
    "Seville", "Marseille", "Lyon", "Munich", "Hamburg", "Budapest", "Krakow", "Bucharest", "Sofia",
    "Belgrade", "Tbilisi", "Baku", "Tehran", "Doha", "Muscat", "Karachi", "Delhi", "Chennai", "Dhaka",
    "Kathmandu", "Colombo", "Bangkok", "Manila", "Jakarta", "Singapore", "Perth", "Sydney", "Auckland",
    "Honolulu", "Vancouver", "Seattle", "Denver", "Chicago", "Boston", "Atlanta", "Miami", "Havana",
    "Bogota", "Quito", "Montevideo", "Accra", "Lagos", "Dakar", "Casablanca", "Tunis", "Addis Ababa",
    "Cape Town", "Buenos Aires", "New York", "Mexico City", "Kuala Lumpur", "Rio de Janeiro", "Hong Kong",
    "São Paulo", "Reykjavík", "Gdansk",
]
NAMES = [
    "Maria", "Tomás", "Aiko", "Priya", "Liam", "Fatima", "Chen", "Olga", "Kwame", "Sofia", "Mateo", "Amara",
    "Lars", "Yuki", "Omar", "Ingrid", "Ravi", "Elena", "Jonas", "Leila", "Diego", "Hannah", "Kofi", "Mei",
    "Pedro", "Nadia", "Arjun", "Zoe", "Emil", "Aisha", "Hugo", "Sara", "Malik", "Noor", "Felix", "Ana",
    "Dmitri", "Chloe", "Tariq", "Ines", "Bruno", "Yara", "Kenji", "Lucia", "Samir", "Greta", "Ivan", "Rosa",
    "my aunt", "Dr. Okafor", "Professor Lindqvist", "the Nguyen family", "Captain Reyes", "our neighbour",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["6:40", "7:15", "9:05", "11:30", "13:20", "15:45", "18:10", "21:55", "23:30"]
MODES = ["train", "bus", "ferry", "flight", "night train", "coach"]

# {n} name, {a} start, {b} destination, {v} stopover, {d} day, {t} time, {m} mode
TEMPLATES = [
    "{n} is flying from {a} to {b} on {d}.",
    "On {d}, {n} takes the {m} from {a} to {b}.",
    "After a week in {a}, {n} is heading to {b}.",
    "{n} leaves {a} on {d} morning and arrives in {b} that night.",
    "{n} has a layover in {v} on the way from {a} to {b}.",
    "Next {d}, {n} will drive to {b}, setting off from {a}.",
    "The {m} {n} booked to {b} departs from {a} at {t}.",
    "Bound for {b}, {n} boards a {m} in {a}.",
    "{n} bought a one-way ticket to {b}; it leaves {a} at {t}.",
    "{n} is visiting {b} next month, travelling out of {a} with a stop in {v}.",
    "Leaving {a} behind, {n} sets off for {b} on {d}.",
    "From {a}, {n} catches the {t} {m} to {b}.",
    "{n} changes in {v} while travelling from {a} to {b}.",
    "{n}'s trip ends in {b}; it starts in {a} on {d}.",
    "Having seen {v} and {a}, {n} now travels on to {b}.",
    "{n} flies out of {a} at {t} and lands in {b} after a stop in {v}.",
    "To reach {b} by {d}, {n} must leave {a} today.",
    "{n} is going to {b} for a conference, departing {a} on {d}.",
]


def record(rng):
    t = rng.choice(TEMPLATES)
    a, b, v = rng.sample(CITIES, 3)
    s = t.format(n=rng.choice(NAMES), a=a, b=b, v=v, d=rng.choice(DAYS), t=rng.choice(TIMES), m=rng.choice(MODES))
    return s[0].upper() + s[1:], b


def main():
    rng = random.Random(SEED)
    seen, rows = set(), []
    while len(rows) < N_TRAIN + N_EVAL:
        s, answer = record(rng)
        if s in seen:
            continue
        seen.add(s)
        rows.append((s, answer))
    here = pathlib.Path(__file__).resolve().parent
    for split, part in (("train", rows[:N_TRAIN]), ("eval", rows[N_TRAIN:])):
        with open(here / f"travel_{split}.jsonl", "w", encoding="utf-8") as f:
            for s, answer in part:
                f.write(json.dumps({"messages": [{"role": "user", "content": f"{QUESTION}\n\n{s}"},
                                                 {"role": "assistant", "content": answer}]},
                                   ensure_ascii=False) + "\n")
        alpaca = [{"instruction": QUESTION, "input": s, "output": answer} for s, answer in part]
        with open(here / f"travel_{split}.json", "w", encoding="utf-8") as f:
            json.dump(alpaca, f, ensure_ascii=False, indent=1)
            f.write("\n")
    print(f"wrote {N_TRAIN} train and {N_EVAL} eval records to {here}")


if __name__ == "__main__":
    main()
