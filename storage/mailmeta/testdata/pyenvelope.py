#!/usr/bin/env python3
"""Reference view of messages by Python's email package, for python_test.go.

Usage: pyenvelope.py FILE...
Prints one JSON object per file, in order:
  tree:       [[section, type/subtype], ...] in IMAP numbering order; the
              enclosed message of a message/rfc822 part carries the section
              of that part, its children number below it (RFC 9051 6.4.5)
  subject:    raw Subject, unfolded and trimmed (not decoded)
  from:       [[display name (decoded), addr-spec], ...] from policy.default
  message_id: first msg-id of Message-ID without <>, "" if none
"""
import email
import json
import re
import sys
from email import policy


def text(s):
    """Undo the surrogateescape of non-ASCII header bytes (RFC 6532)."""
    if s is None:
        return None
    s = str(s)
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeDecodeError:
        return s.encode("utf-8", "surrogateescape").decode("latin-1")


def tree(msg, section, out):
    ctype = msg.get_content_type()
    out.append([section, ctype])
    if not msg.is_multipart():
        return
    payload = msg.get_payload()
    if ctype.startswith("multipart/"):
        for i, sub in enumerate(payload, 1):
            tree(sub, "%s.%d" % (section, i) if section else str(i), out)
    elif ctype in ("message/rfc822", "message/global") and payload:
        tree(payload[0], section, out)


def describe(path):
    with open(path, "rb") as f:
        data = f.read()
    old = email.message_from_bytes(data, policy=policy.compat32)
    out = {"file": path, "tree": []}
    tree(old, "", out["tree"])
    # raw_items: values as stored, before compat32 wraps 8-bit ones in Header.
    raw = {}
    for name, value in old.raw_items():
        raw.setdefault(name.lower(), value)
    subj = raw.get("subject")
    out["subject"] = text(re.sub(r"\r?\n", "", subj).strip()) if subj is not None else None
    mid = raw.get("message-id")
    out["message_id"] = ""
    if mid is not None:
        mid = text(str(mid))
        m = re.search(r"<([^>]*)>", mid)
        if m:
            out["message_id"] = re.sub(r"\s", "", m.group(1))
        elif mid.split():
            out["message_id"] = mid.split()[0].strip("<>")
    new = email.message_from_bytes(data, policy=policy.default)
    try:
        h = new["From"]
        out["from"] = [] if h is None else [[text(a.display_name), text(a.addr_spec)] for a in h.addresses]
    except Exception as e:  # malformed header: Python gives up
        out["from"] = None
        out["from_error"] = repr(e)
    return out


def main():
    for path in sys.argv[1:]:
        try:
            out = describe(path)
        except Exception as e:
            out = {"file": path, "error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
