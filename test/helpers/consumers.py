"""Loads an export the way its users would, and prints what they see as JSON.

usage: consumers.py jsonl FILE INDEX | consumers.py hf DIR INDEX
Prints {"datasets": [...], "pandas": [...]}: for each loader, its row count, columns and row INDEX.
"""
import json
import os
import sys

import pandas as pd
from datasets import load_dataset


def from_datasets(ds, index):
    return {"loader": ds.info.builder_name, "rows": ds.num_rows, "columns": ds.column_names, "row": ds[index]}


def from_pandas(df, index, name):
    row = json.loads(df.iloc[[index]].to_json(orient="records", force_ascii=False))[0]
    return {"loader": name, "rows": len(df), "columns": list(df.columns), "row": row}


kind, path, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "jsonl":
    seen = {
        "datasets": [from_datasets(load_dataset("json", data_files=path, split="train"), index)],
        "pandas": [from_pandas(pd.read_json(path, lines=True, dtype=False), index, "read_json")],
    }
elif kind == "hf":
    shards = os.path.join(path, "data", "*.parquet")
    seen = {
        "datasets": [
            from_datasets(load_dataset(path, split="train"), index),
            from_datasets(load_dataset("parquet", data_files=shards, split="train"), index),
        ],
        "pandas": [from_pandas(pd.read_parquet(os.path.join(path, "data")), index, "read_parquet")],
    }
else:
    raise SystemExit(f"unknown kind {kind}")
print(json.dumps(seen, ensure_ascii=False))
