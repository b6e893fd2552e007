#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""shared.py - the IMAP side of t/e2e/shared.sh: CommuniGate's shared
mailboxes on a Dovecot configured by "waypost dovecot".

  shared.py PORT PASSWORD STEP [ARGS]

Prints one "ok - what" or "not ok - what" line per check (shared.sh turns
them into its numbered TAP lines), "#" lines for details.  Accounts of the
main domain log in without it ("alice"), others with it.
"""
import imaplib, re, sys

PORT, PW, STEP = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]


def check(ok, what, detail=None):
    print("%s - %s" % ("ok" if ok else "not ok", what))
    if not ok and detail is not None:
        print("#   %s" % (detail,))
    sys.stdout.flush()
    return ok


def q(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def login(user):
    c = imaplib.IMAP4("127.0.0.1", PORT, timeout=20)
    c.login(user, PW)
    return c


def simple(c, *cmd):
    try:
        typ, data = c._simple_command(*cmd)
        return typ, data
    except imaplib.IMAP4.error as e:
        return "NO", [str(e).encode()]


def names(c, cmd="LIST", pattern="*"):
    typ, data = (c.list if cmd == "LIST" else c.lsub)('""', q(pattern))
    out = []
    for line in data or []:
        if line is None:
            continue
        if isinstance(line, tuple):
            line = line[0] + line[1]
        m = re.match(rb'\((.*?)\) (?:"[^"]*"|NIL) (.*)$', line)
        if m:
            n = m.group(2).decode()
            if n.startswith('"'):
                n = n[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            out.append((n, m.group(1).decode()))
    return out


def selectable(c):
    return [n for n, flags in names(c) if "\\Noselect" not in flags and "\\NonExistent" not in flags]


def select(c, box):
    """(ok, number of messages); the mailbox stays selected if ok"""
    typ, data = simple(c, "SELECT", q(box))
    if typ != "OK":
        return False, data
    # SELECT (not EXAMINE) even where Dovecot answers READ-ONLY: the rights
    # must refuse changes, not the client; imaplib only needs to know.
    c.state = "SELECTED"
    n = c.untagged_responses.get("EXISTS", [b"0"])[-1]
    c.untagged_responses.clear()
    return True, int(n)


def subjects(c):
    typ, data = simple(c, "FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    got = []
    for item in c.untagged_responses.pop("FETCH", []):
        if isinstance(item, tuple):
            got.append(item[1].decode().strip())
    return got


def myrights(c, box):
    typ, data = simple(c, "MYRIGHTS", q(box))
    r = c.untagged_responses.pop("MYRIGHTS", [b""])[-1] or b""
    return typ, r.decode().rsplit(" ", 1)[-1] if typ == "OK" else ""


def count(user, box):
    c = login(user)
    typ, data = c.status(q(box), "(MESSAGES)")
    c.logout()
    m = re.search(rb"MESSAGES (\d+)", data[0] or b"") if typ == "OK" else None
    return int(m.group(1)) if m else None


def append_msg(c, box, subject):
    msg = ("From: someone@company.dom\r\nSubject: %s\r\n\r\n%s\r\n" % (subject, subject)).encode()
    try:
        typ, data = c.append(q(box), None, None, msg)
    except imaplib.IMAP4.error as e:
        return "NO", [str(e).encode()]
    return typ, data


def delete_and_expunge(c):
    """STORE +FLAGS \\Deleted on message 1 and EXPUNGE: both answers"""
    t1, d1 = simple(c, "STORE", "1", "+FLAGS", "(\\Deleted)")
    c.untagged_responses.clear()
    t2, d2 = simple(c, "EXPUNGE")
    c.untagged_responses.clear()
    return t1, t2


# ---------------------------------------------------------------- steps
def step_owner():
    """marketing creates announce, posts to it, grants alice lrs"""
    m = login("marketing")
    check(simple(m, "CREATE", q("announce"))[0] == "OK", "marketing: CREATE announce")
    check(append_msg(m, "announce", "announcement 1")[0] == "OK", "marketing: APPEND to announce")
    check(simple(m, "SETACL", q("announce"), "alice", "lrs")[0] == "OK", "marketing: SETACL announce alice lrs")
    typ, data = simple(m, "GETACL", q("announce"))
    acl = (m.untagged_responses.pop("ACL", [b""])[-1] or b"").decode()
    check(re.search(r"\balice lrs\b", acl) is not None, "marketing: GETACL shows alice lrs", acl)
    m.logout()


def step_reader():
    """alice reads ~marketing/announce, cannot delete or append"""
    a = login("alice")
    typ, data = a.namespace()
    check(typ == "OK" and b'(("~" "/"))' in data[0], "alice: NAMESPACE names the shared namespace ~", data)
    check("~marketing/announce" in [n for n, f in names(a, "LIST", "~*")], 'alice: LIST "" "~*" shows ~marketing/announce')
    typ, data = a.status(q("~marketing/announce"), "(MESSAGES)")
    check(typ == "OK" and b"MESSAGES 1" in data[0], "alice: STATUS ~marketing/announce: 1 message", data)
    check("~marketing/announce" in selectable(a), "alice: once opened, LIST shows ~marketing/announce", names(a))
    typ, r = myrights(a, "~marketing/announce")
    check(r == "lrs", "alice: MYRIGHTS ~marketing/announce is lrs", r)
    ok, n = select(a, "~marketing/announce")
    check(ok and n == 1, "alice: SELECT ~marketing/announce, 1 message", n)
    check(subjects(a) == ["Subject: announcement 1"], "alice: reads the announcement")
    delete_and_expunge(a)
    a.untagged_responses.clear()
    typ, data = simple(a, "FETCH", "1", "(FLAGS)")
    flags = b" ".join(x for x in a.untagged_responses.pop("FETCH", []) if isinstance(x, bytes))
    check(b"\\Deleted" not in flags, "alice: cannot mark it \\Deleted", flags)
    simple(a, "CLOSE")
    typ, data = append_msg(a, "~marketing/announce", "from alice")
    check(typ == "NO", "alice: APPEND to ~marketing/announce refused", data)
    check(simple(a, "DELETE", q("~marketing/announce"))[0] == "NO", "alice: DELETE ~marketing/announce refused")
    a.logout()
    check(count("marketing", "announce") == 1, "marketing: announce still holds its message")


def step_stranger():
    """bob has no rights: neither sees nor opens it"""
    b = login("bob")
    all_names = [n for n, f in names(b, "LIST", "~*")]
    check("~marketing/announce" not in all_names, 'bob: LIST "" "~*" does not show ~marketing/announce', all_names)

    ok, data = select(b, "~marketing/announce")
    check(not ok, "bob: SELECT ~marketing/announce refused", data)
    check(simple(b, "STATUS", q("~marketing/announce"), "(MESSAGES)")[0] == "NO", "bob: STATUS refused")
    all_names = [n for n, f in names(b)] + [n for n, f in names(b, "LIST", "~*")]
    check("~marketing/announce" not in all_names, "bob: after trying, LIST still does not show it", all_names)
    b.logout()


def step_old_letters():
    """the RFC 2086 letters c (create inside) and d (delete messages)"""
    m = login("marketing")
    simple(m, "CREATE", q("projects"))
    append_msg(m, "projects", "plan A")
    append_msg(m, "projects", "plan B")
    check(simple(m, "SETACL", q("projects"), "bob", "lr")[0] == "OK", "marketing: SETACL projects bob lr")
    b = login("bob")
    check(simple(b, "CREATE", q("~marketing/projects/bob"))[0] == "NO", "bob (lr): cannot create inside projects")
    select(b, "~marketing/projects")
    delete_and_expunge(b)
    simple(b, "CLOSE")
    check(count("marketing", "projects") == 2, "bob (lr): cannot delete a message")
    check(simple(m, "SETACL", q("projects"), "bob", "lrcd")[0] == "OK", "marketing: SETACL projects bob lrcd")
    b.logout()
    b = login("bob")  # a new session: Dovecot caches rights (acl cache_secs)
    typ, r = myrights(b, "~marketing/projects")
    check(all(x in r for x in "kxte"), "bob: c and d became Dovecot's k x and t e", r)
    check(simple(b, "CREATE", q("~marketing/projects/bob"))[0] == "OK", "bob (c): creates ~marketing/projects/bob")
    ok, n = select(b, "~marketing/projects")
    t1, t2 = delete_and_expunge(b)
    simple(b, "CLOSE")
    check(t1 == "OK" and t2 == "OK" and count("marketing", "projects") == 1, "bob (d): deletes and expunges a message")
    check(append_msg(b, "~marketing/projects", "from bob")[0] == "NO", "bob (no i): cannot append")
    b.logout()
    names_m = [n for n, f in names(m)]
    check("projects/bob" in names_m, "marketing: sees projects/bob", names_m)
    m.logout()


def step_subscribe():
    a = login("alice")
    check(simple(a, "SUBSCRIBE", q("~marketing/announce"))[0] == "OK", "alice: SUBSCRIBE ~marketing/announce")
    a.logout()
    a = login("alice")
    subs = [n for n, f in names(a, "LSUB", "~*")]
    check("~marketing/announce" in subs, 'alice, next session: LSUB "" "~*" lists ~marketing/announce', subs)
    a.logout()


def step_share(owner, box, user, rights):
    o = login(owner)
    check(simple(o, "SETACL", q(box), user, rights)[0] == "OK", "%s: SETACL %s %s %s" % (owner, box, user, rights))
    o.logout()


def step_subscribe_other(box):
    a = login("alice")
    check(simple(a, "SUBSCRIBE", q(box))[0] == "OK", "alice: SUBSCRIBE %s" % box)
    a.logout()


def step_grant(user):
    m = login("marketing")
    check(simple(m, "SETACL", q("announce"), user, "lrs")[0] == "OK", "marketing: SETACL announce %s lrs" % user)
    m.logout()


def step_newcomer(user):
    """first login of an account made after the template was set"""
    n = login(user)
    subs = [x for x, f in names(n, "LSUB", "~*")]
    check("~marketing/announce" in subs, "%s: first login: subscribed to ~marketing/announce" % user, subs)
    subs = [x for x, f in names(n, "LSUB")]
    check("Aliases/mkt-announce" in subs, "%s: first login: subscribed to the alias" % user, subs)
    boxes = selectable(n)
    check("Aliases/mkt-announce" in boxes, "%s: first login: alias Aliases/mkt-announce in LIST" % user, boxes)
    ok, cnt = select(n, "Aliases/mkt-announce")
    check(ok and cnt == 1, "%s: SELECT Aliases/mkt-announce, 1 message" % user, cnt)
    check(subjects(n) == ["Subject: announcement 1"], "%s: reads the announcement through the alias" % user)
    t1, t2 = delete_and_expunge(n)
    simple(n, "CLOSE")
    check(count("marketing", "announce") == 1, "%s: cannot delete it through the alias either" % user, (t1, t2))
    typ, data = append_msg(n, "Aliases/mkt-announce", "via alias")
    check(typ == "NO", "%s: cannot append through the alias" % user, data)
    check(simple(n, "UNSUBSCRIBE", q("~marketing/announce"))[0] == "OK", "%s: UNSUBSCRIBE ~marketing/announce" % user)
    n.logout()
    n = login(user)
    subs = [x for x, f in names(n, "LSUB", "~*")]
    check("~marketing/announce" not in subs, "%s: next login: not subscribed again" % user, subs)
    n.logout()


def step_no_rights_alias(user):
    """an alias shows only what its owner may see"""
    b = login(user)
    ok, cnt = select(b, "Aliases/mkt-announce")
    check(ok and cnt == 0, "%s (no rights on announce): the alias shows no message" % user, cnt)
    b.logout()


def step_admin(user, allowed, denied):
    c = login(user)
    for box in allowed.split(",") if allowed else []:
        ok, n = select(c, box)
        check(ok and n >= 1, "%s: SELECT %s (%s messages)" % (user, box, n), n)
        check(len(subjects(c)) == n, "%s: reads %s" % (user, box))
        simple(c, "CLOSE")
    for box in denied.split(",") if denied else []:
        ok, data = select(c, box)
        check(not ok, "%s: SELECT %s refused" % (user, box), data)
    c.logout()


def step_seed_inbox(user):
    c = login(user)
    check(append_msg(c, "INBOX", "for %s" % user)[0] == "OK", "%s: a message in INBOX" % user)
    c.logout()


def step_public():
    """public holds Sales; marketing, its real owner, has all rights"""
    p = login("public")
    check(simple(p, "CREATE", q("Sales"))[0] == "OK", "public: CREATE Sales")
    check(simple(p, "SETACL", q("Sales"), "marketing", "lrswipcda")[0] == "OK",
          "public: SETACL Sales marketing lrswipcda (all CommuniGate rights)")
    p.logout()
    m = login("marketing")
    typ, r = myrights(m, "~public/Sales")
    check(all(x in r for x in "lrwsipkxtea"), "marketing: MYRIGHTS ~public/Sales has every right", r)
    check(append_msg(m, "~public/Sales", "offer 1")[0] == "OK", "marketing: APPEND to ~public/Sales")
    check(append_msg(m, "~public/Sales", "offer 2")[0] == "OK", "marketing: APPEND again")
    check(simple(m, "SETACL", q("~public/Sales"), "alice", "lrs")[0] == "OK",
          "marketing: SETACL ~public/Sales alice lrs (administers it)")
    check(simple(m, "CREATE", q("~public/Sales/2026"))[0] == "OK", "marketing: CREATE ~public/Sales/2026")
    ok, n = select(m, "~public/Sales")
    t1, t2 = delete_and_expunge(m)
    simple(m, "CLOSE")
    check(t1 == "OK" and t2 == "OK" and count("public", "Sales") == 1, "marketing: deletes a message in ~public/Sales")
    check(simple(m, "DELETE", q("~public/Sales/2026"))[0] == "OK", "marketing: DELETE ~public/Sales/2026")
    m.logout()
    a = login("alice")
    ok, n = select(a, "~public/Sales")
    check(ok and subjects(a) == ["Subject: offer 2"], "alice: reads ~public/Sales")
    a.logout()


def step_outgoing_create():
    s = login("security")
    check(simple(s, "CREATE", q("outgoing"))[0] == "OK", "security: CREATE outgoing")
    s.logout()


steps = {"owner": step_owner, "reader": step_reader, "stranger": step_stranger, "old-letters": step_old_letters,
         "subscribe": step_subscribe, "subscribe-other": step_subscribe_other, "share": step_share, "grant": step_grant, "newcomer": step_newcomer,
         "no-rights-alias": step_no_rights_alias, "admin": step_admin, "seed-inbox": step_seed_inbox,
         "public": step_public, "outgoing": step_outgoing_create}
try:
    steps[STEP](*ARGS)
except (OSError, imaplib.IMAP4.error) as e:
    check(False, "%s: IMAP session" % STEP, e)
