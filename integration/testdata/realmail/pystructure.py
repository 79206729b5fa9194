#!/usr/bin/env python3
"""Reference view of messages by Python's email package, for realmail_test.go.

Usage: pystructure.py [--text] FILE...
Prints one JSON object per file, in order:
  tree:        [{section, type, charset, boundary, cte}, ...] in IMAP part
               order (RFC 9051 6.4.5); the enclosed message of a
               message/rfc822 part carries the section of that part, its
               children number below it. charset is given for non-multipart
               parts, boundary for multiparts, cte (lower-case, "7bit" when
               absent) for non-multipart parts.
  subject:     raw Subject, unfolded and trimmed (not decoded), null if absent
  subject_dec: decoded Subject (policy.default), "" if absent
  from/to/cc:  [[display name (decoded), mailbox, host], ...] from
               policy.default; null with *_error when Python cannot parse
  message_id, in_reply_to: raw values, unfolded and trimmed, "" if absent
  text (--text): [{section, type, cte, charset, text}] decoded text of text/* leaf
               parts (HTML reduced to its text), at most 64 KiB each; parts
               whose charset Python does not know are left out
"""
import email
import html.parser
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


def raw_value(v):
    if v is None:
        return None
    return text(re.sub(r"\r?\n", "", str(v)).strip())


def tree(msg, section, out, leaves):
    ctype = msg.get_content_type()
    ent = {"section": section, "type": ctype}
    if ctype.startswith("multipart/"):
        b = msg.get_boundary()
        ent["boundary"] = text(b) if b is not None else None
    else:
        cs = msg.get_param("charset")
        if isinstance(cs, tuple):  # RFC 2231
            cs = email.utils.collapse_rfc2231_value(cs)
        ent["charset"] = text(cs) if cs is not None else None
        cte = msg.get("content-transfer-encoding")
        ent["cte"] = text(str(cte)).strip().lower() if cte is not None else "7bit"
    out.append(ent)
    if not msg.is_multipart():
        if ctype.startswith("text/"):
            leaves.append((section, ctype, ent.get("cte"), msg))
        return
    payload = msg.get_payload()
    if ctype.startswith("multipart/"):
        for i, sub in enumerate(payload, 1):
            tree(sub, "%s.%d" % (section, i) if section else str(i), out, leaves)
    elif ctype in ("message/rfc822", "message/global") and payload:
        tree(payload[0], section, out, leaves)


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title") and self.skip:
            self.skip -= 1
        self.out.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_text(s):
    p = _Text()
    try:
        p.feed(s)
        p.close()
    except Exception:
        return ""
    return "".join(p.out)


def decoded(part):
    data = part.get_payload(decode=True)
    if data is None:
        return None
    cs = part.get_content_charset() or "us-ascii"
    try:
        s = data.decode(cs, errors="replace")
    except LookupError:
        return None
    if part.get_content_type() == "text/html":
        s = html_text(s)
    return s[:65536]


def addresses(new, name, out):
    try:
        h = new[name]
        out[name] = [] if h is None else [
            [text(a.display_name), text(a.username), text(a.domain)] for a in h.addresses]
    except Exception as e:  # malformed header: Python gives up
        out[name] = None
        out[name + "_error"] = repr(e)


def describe(path, want_text):
    with open(path, "rb") as f:
        data = f.read()
    old = email.message_from_bytes(data, policy=policy.compat32)
    out = {"file": path, "tree": []}
    leaves = []
    tree(old, "", out["tree"], leaves)
    raw = {}
    for name, value in old.raw_items():
        raw.setdefault(name.lower(), value)
    out["subject"] = raw_value(raw.get("subject"))
    out["message_id"] = raw_value(raw.get("message-id")) or ""
    out["in_reply_to"] = raw_value(raw.get("in-reply-to")) or ""
    new = email.message_from_bytes(data, policy=policy.default)
    for name in ("from", "to", "cc"):
        addresses(new, name, out)
    try:
        out["subject_dec"] = text(new["subject"]) or ""
    except Exception:
        out["subject_dec"] = ""
    if want_text:
        out["text"] = []
        for section, ctype, cte, part in leaves:
            try:
                s = decoded(part)
            except Exception:
                s = None
            if s:
                out["text"].append({"section": section, "type": ctype, "cte": cte,
                                    "charset": part.get_content_charset() or "", "text": s})
    return out


def main():
    args = sys.argv[1:]
    want_text = False
    if args and args[0] == "--text":
        want_text, args = True, args[1:]
    for path in args:
        try:
            out = describe(path, want_text)
        except Exception as e:
            out = {"file": path, "error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
