"""Drive Stoa's IMAP server with Python's imaplib (STARTTLS, self-signed)."""
import imaplib
import ssl
import sys

host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(res, what):
    typ, data = res
    if typ != "OK":
        raise SystemExit(f"{what}: {typ} {data}")
    return data


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4(host, port)
assert "STARTTLS" in m.capabilities, m.capabilities
check(m.starttls(ssl_context=ctx), "starttls")
check(m.login(user, pw), "login")
assert "IMAP4REV2" in m.capabilities or "IMAP4REV1" in m.capabilities, m.capabilities
for i in range(3):
    msg = f"From: a@example.test\r\nSubject: py {i}\r\n\r\nbody {i}\r\n".encode()
    check(m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(1700000000), msg), "append")
check(m.create("PyBox"), "create")
data = check(m.select("INBOX"), "select")
assert data[0] == b"3", data
data = check(m.search(None, "SUBJECT", '"py 1"'), "search")
assert data[0] == b"2", data
data = check(m.fetch("1:3", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "fetch")
assert b"Subject: py 0" in data[0][1], data
data = check(m.uid("FETCH", "1:*", "(UID RFC822.SIZE)"), "uid fetch")
assert len(data) == 3, data
check(m.store("1", "+FLAGS", "(\\Deleted)"), "store")
check(m.expunge(), "expunge")
check(m.copy("1", "PyBox"), "copy")
data = check(m.status("PyBox", "(MESSAGES)"), "status")
assert b"MESSAGES 1" in data[0], data
typ, data = m.list()
assert typ == "OK" and any(b"PyBox" in x for x in data), data
typ, data = m.select("NoSuchBox")
assert typ == "NO", (typ, data)
m.logout()
print("ALL OK")
