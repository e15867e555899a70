"""
Tests for L{chat.commands}: every verb of PROTOCOL.md sections 3 and 4
parsed to its request value, the order in which a line is refused
(C{unknown-command}, then C{not-registered}, then C{bad-arguments} with the
verb's usage), and the text of C{/help}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from chat import commands, errors, wire
from chat.commands import (
    ALIASES,
    COMMANDS,
    HISTORY_DEFAULT,
    UNREGISTERED,
    Download,
    Files,
    Format,
    Help,
    History,
    Join,
    ListRooms,
    ListUsers,
    Login,
    Msg,
    Nick,
    Part,
    Password,
    Ping,
    Quit,
    Register,
    Request,
    Say,
    StartTLS,
    Status,
    Topic,
    Upload,
    Whois,
    help_text,
    parse,
)

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
"""The SHA-256 of C{test}, lower-case hex."""


def request(line: str, registered: bool = True) -> Request:
    """
    The request a typed C{line} parses to.
    """
    return parse(wire.parse(line), registered)


class ParseTests(SynchronousTestCase):
    """
    L{parse} turns each verb, with its arguments, into its request value.
    """

    def assert_parses(self, cases: dict[str, Request]) -> None:
        """
        Assert that each line of C{cases} parses to its request, by a registered connection.
        """
        for line, expected in cases.items():
            self.assertEqual(request(line), expected, line)

    def test_plain_line_is_said(self) -> None:
        """
        A line that is not a command is said to the current room, its text unchanged.
        """
        self.assert_parses({
            "hello there": Say("hello there"),
            "  spaced  ": Say("  spaced  "),
        })

    def test_double_slash_is_literal(self) -> None:
        """
        A line starting with C{//} says the text after the first C{/}.
        """
        self.assert_parses({
            "//help": Say("/help"),
            "// not a command": Say("/ not a command"),
        })

    def test_plain_line_before_registration(self) -> None:
        """
        Before registration a plain line still parses to L{Say}: the server refuses it, not the parser.
        """
        self.assertEqual(request("hi", registered=False), Say("hi"))

    def test_verb_is_case_insensitive(self) -> None:
        """
        The verb may be typed in any case.
        """
        self.assert_parses({"/NICK bob": Nick("bob"), "/Join #x": Join("#x")})

    def test_help(self) -> None:
        """
        C{/help} takes an optional topic.
        """
        self.assert_parses({"/help": Help(""), "/help nick": Help("nick"), "/help /users": Help("/users")})

    def test_nick(self) -> None:
        """
        C{/nick NEW} takes one word, then optionally C{--no-join}.
        """
        self.assert_parses({
            "/nick alice": Nick("alice"),
            "/nick   alice  ": Nick("alice"),
            "/nick alice --no-join": Nick("alice", join=False),
        })

    def test_nick_bad_flag(self) -> None:
        """
        A second word other than C{--no-join} after the nick is a usage error naming the flag.
        """
        for line in ("/nick alice bob", "/nick alice --no-join x"):
            with self.subTest(line=line):
                with self.assertRaises(errors.BadArguments) as raised:
                    request(line)
                self.assertEqual(str(raised.exception), "usage: /nick NEW [--no-join]")

    def test_msg(self) -> None:
        """
        C{/msg NICK TEXT}: the text keeps its inner spaces.
        """
        self.assert_parses({"/msg bob hello  there": Msg("bob", "hello  there")})

    def test_e2e_verbs(self) -> None:
        """
        C{/emsg}, C{/key publish}, C{/key remove} and C{/keys} (PROTOCOL.md section 11) parse to their
        requests; the key is decoded, the envelope kept exactly.
        """
        key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss" + "LS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
        self.assert_parses({
            "/emsg bob eyJj_-9Z": commands.Emsg("bob", "eyJj_-9Z"),
            f"/key publish {key}": commands.PublishKey(bytes(range(64))),
            f"/KEY Publish {key}": commands.PublishKey(bytes(range(64))),
            "/key remove HVsARONPLPuI66wi": commands.RemoveKey("HVsARONPLPuI66wi"),
            "/keys alice": commands.ListKeys("alice"),
        })
        for line, usage in (
            ("/emsg bob", "usage: /emsg NICK ENVELOPE"),
            ("/emsg bob a b", "usage: /emsg NICK ENVELOPE"),
            ("/key", "usage: /key publish KEY | /key remove DEVICE"),
            ("/key list", "usage: /key publish KEY | /key remove DEVICE"),
            ("/keys", "usage: /keys NICK"),
            ("/keys a b", "usage: /keys NICK"),
        ):
            with self.assertRaises(errors.BadArguments) as raised:
                request(line)
            self.assertEqual(str(raised.exception), usage, line)
        for line in ("/emsg bob a=b", f"/key publish {key[:-2]}"):
            self.assertRaises(errors.BadArguments, request, line)
        for line in ("/emsg bob x", "/key remove x", "/keys bob"):
            self.assertRaises(errors.NotRegistered, request, line, False)

    def test_me(self) -> None:
        """
        C{/me TEXT} is an action said to the current room.
        """
        self.assert_parses({"/me waves at all": Say("waves at all", action=True)})

    def test_join(self) -> None:
        """
        C{/join #ROOM} takes one room.
        """
        self.assert_parses({"/join #dev": Join("#dev")})

    def test_part(self) -> None:
        """
        C{/part [#ROOM] [REASON]}: a first word starting with C{#} is the room, the rest the reason.
        """
        self.assert_parses({
            "/part": Part(None, ""),
            "/part #dev": Part("#dev", ""),
            "/part #dev off to lunch": Part("#dev", "off to lunch"),
            "/part off to lunch": Part(None, "off to lunch"),
        })

    def test_rooms(self) -> None:
        """
        C{/rooms} takes nothing.
        """
        self.assert_parses({"/rooms": ListRooms()})

    def test_list_and_users_alias(self) -> None:
        """
        C{/list [#ROOM]} and its alias C{/users} ask for a room's users.
        """
        self.assert_parses({
            "/list": ListUsers(None),
            "/list #dev": ListUsers("#dev"),
            "/users": ListUsers(None),
            "/users #dev": ListUsers("#dev"),
        })

    def test_whois(self) -> None:
        """
        C{/whois NICK} takes one nick.
        """
        self.assert_parses({"/whois bob": Whois("bob")})

    def test_status_and_away_alias(self) -> None:
        """
        C{/status [TEXT]} and its alias C{/away} set the status; without text they clear it.
        """
        self.assert_parses({
            "/status gone fishing": Status("gone fishing"),
            "/status": Status(""),
            "/away lunch": Status("lunch"),
            "/away": Status(""),
        })

    def test_topic(self) -> None:
        """
        C{/topic [#ROOM] [TEXT]}: without text it shows the topic.
        """
        self.assert_parses({
            "/topic": Topic(None, None),
            "/topic #dev": Topic("#dev", None),
            "/topic #dev release on Friday": Topic("#dev", "release on Friday"),
            "/topic release on Friday": Topic(None, "release on Friday"),
        })

    def test_history(self) -> None:
        """
        C{/history [N] [#ROOM]} takes N and the room in either order, N defaulting to 20.
        """
        self.assertEqual(HISTORY_DEFAULT, 20)
        self.assert_parses({
            "/history": History(20, None),
            "/history 5": History(5, None),
            "/history #dev": History(20, "#dev"),
            "/history 5 #dev": History(5, "#dev"),
            "/history #dev 5": History(5, "#dev"),
            "/history 0": History(0, None),
        })

    def test_history_private_and_before(self) -> None:
        """
        C{/history [N] [#ROOM|NICK] [before ID]}: a bare valid nick names a private
        conversation, and C{before ID} (any case) may come anywhere, in any order.
        """
        self.assert_parses({
            "/history bob": History(20, None, None, "bob"),
            "/history 5 Bob": History(5, None, None, "Bob"),
            "/history Bob 5": History(5, None, None, "Bob"),
            "/history before 42": History(20, None, 42),
            "/history #dev before 42": History(20, "#dev", 42),
            "/history before 42 7 #dev": History(7, "#dev", 42),
            "/history 7 BEFORE 1 bob": History(7, None, 1, "bob"),
            "/history lobby": History(20, None, None, "lobby"),
        })

    def test_history_room_without_hash(self) -> None:
        """
        A word that is no nick but would be a room name with its C{#} gets a bad-arguments saying so.
        """
        error = self.assertRaises(errors.BadArguments, request, "/history 1dev")
        self.assertEqual(str(error), "1dev is not a nick; for a room put # before it: /history #1dev")

    def test_register(self) -> None:
        """
        C{/register PASSWORD} takes one word.
        """
        self.assert_parses({"/register s3cret-pw": Register("s3cret-pw")})

    def test_login(self) -> None:
        """
        C{/login NICK PASSWORD} takes two words, then optionally C{--no-join}.
        """
        self.assert_parses({
            "/login alice s3cret-pw": Login("alice", "s3cret-pw"),
            "/login alice s3cret-pw --no-join": Login("alice", "s3cret-pw", join=False),
            "/login alice --no-join": Login("alice", "--no-join"),
        })

    def test_password(self) -> None:
        """
        C{/password OLD NEW} takes two words.
        """
        self.assert_parses({"/password old-pw new-pw": Password("old-pw", "new-pw")})

    def test_upload(self) -> None:
        """
        C{/upload TARGET NAME SIZE [SHA256]}: NAME may hold spaces, SHA256 is optional and lower-cased.
        """
        self.assert_parses({
            "/upload bob a.bin 100": Upload("bob", "a.bin", 100, None),
            "/upload #dev my holiday photo.jpg 2048": Upload("#dev", "my holiday photo.jpg", 2048, None),
            f"/upload bob a.bin 100 {SHA}": Upload("bob", "a.bin", 100, SHA),
            f"/upload bob my file.txt 4 {SHA.upper()}": Upload("bob", "my file.txt", 4, SHA),
            "/upload bob 7 8": Upload("bob", "7", 8, None),
        })

    def test_download(self) -> None:
        """
        C{/download ID [OFFSET]}: OFFSET defaults to 0.
        """
        self.assert_parses({"/download 7": Download(7, 0), "/download 7 1024": Download(7, 1024)})

    def test_files(self) -> None:
        """
        C{/files} takes nothing.
        """
        self.assert_parses({"/files": Files()})

    def test_format(self) -> None:
        """
        C{/format text|json}, in any case.
        """
        self.assert_parses({"/format json": Format("json"), "/format TEXT": Format("text")})

    def test_starttls(self) -> None:
        """
        C{/starttls} takes nothing.
        """
        self.assert_parses({"/starttls": StartTLS()})

    def test_ping(self) -> None:
        """
        C{/ping [TOKEN]} echoes its token, empty by default.
        """
        self.assert_parses({"/ping abc 123": Ping("abc 123"), "/ping": Ping("")})

    def test_quit_and_exit_alias(self) -> None:
        """
        C{/quit [REASON]} and its alias C{/exit}; the reason defaults to C{goodbye}.
        """
        self.assert_parses({
            "/quit": Quit("goodbye"),
            "/quit see you": Quit("see you"),
            "/exit": Quit("goodbye"),
            "/exit later": Quit("later"),
        })


class ModerationParseTests(SynchronousTestCase):
    """
    The verbs of PROTOCOL.md section 10.
    """

    def test_op_deop_unban_unmute_invite(self) -> None:
        """
        C{NICK [#ROOM]} verbs take a nick and an optional room.
        """
        cases: dict[str, commands.Request] = {
            "/op bob": commands.Op("bob", None),
            "/op bob #dev": commands.Op("bob", "#dev"),
            "/deop bob #dev": commands.Op("bob", "#dev", operator=False),
            "/unban eve": commands.Unban("eve", None),
            "/unmute eve #x": commands.Unmute("eve", "#x"),
            "/invite bob #x": commands.Invite("bob", "#x"),
        }
        for line, expected in cases.items():
            self.assertEqual(request(line), expected, line)

    def test_kick_and_ban(self) -> None:
        """
        C{/kick} takes a reason; C{/ban} a DURATION word (s, m, h, d, w) before it, or none (for good).
        """
        cases: dict[str, commands.Request] = {
            "/kick bob": commands.Kick("bob", None, ""),
            "/kick bob #x stop that now": commands.Kick("bob", "#x", "stop that now"),
            "/kick bob stop": commands.Kick("bob", None, "stop"),
            "/ban eve": commands.Ban("eve", None, None, ""),
            "/ban eve #x 10m spam and more": commands.Ban("eve", "#x", 600.0, "spam and more"),
            "/ban eve 2h": commands.Ban("eve", None, 7200.0, ""),
            "/ban eve 7d": commands.Ban("eve", None, 7 * 86400.0, ""),
            "/ban eve 1w x": commands.Ban("eve", None, 7 * 86400.0, "x"),
            "/ban eve spam": commands.Ban("eve", None, None, "spam"),
            "/ban eve 0m x": commands.Ban("eve", None, None, "0m x"),
            "/ban eve 10M": commands.Ban("eve", None, None, "10M"),
        }
        for line, expected in cases.items():
            self.assertEqual(request(line), expected, line)

    def test_mute_room_bans_kill_announce_stats(self) -> None:
        """
        C{/mute} takes an optional DURATION, C{/room} a setting and on or off (or nothing), and the
        administrator verbs their arguments.
        """
        cases: dict[str, commands.Request] = {
            "/mute bob": commands.Mute("bob", None, None),
            "/mute bob #x 30s": commands.Mute("bob", "#x", 30.0),
            "/room": commands.RoomSet(None, None),
            "/room #x": commands.RoomSet("#x", None),
            "/room Moderated ON": commands.RoomSet(None, "moderated", True),
            "/room #x invite-only off": commands.RoomSet("#x", "invite-only", False),
            "/bans": commands.Bans(None),
            "/bans #x": commands.Bans("#x"),
            "/kill bob": commands.Kill("bob", "killed by a server administrator"),
            "/kill bob go away": commands.Kill("bob", "go away"),
            "/announce restart at noon": commands.Announce("restart at noon"),
            "/stats": commands.Stats(),
        }
        for line, expected in cases.items():
            self.assertEqual(request(line), expected, line)

    def test_bad_arguments(self) -> None:
        """
        Malformed moderation lines get their verb's usage.
        """
        bad = {
            "op": ["/op", "/op bob #x extra"], "kick": ["/kick"], "ban": ["/ban"],
            "mute": ["/mute", "/mute bob forever", "/mute bob #x 5m more"], "unban": ["/unban"],
            "room": ["/room moderated", "/room moderated maybe", "/room #x a on b"], "bans": ["/bans x"],
            "invite": ["/invite"], "kill": ["/kill"], "announce": ["/announce", "/announce   "],
        }
        for verb, lines in bad.items():
            for line in lines:
                error = self.assertRaises(errors.BadArguments, request, line)
                self.assertEqual(str(error), f"usage: {COMMANDS[verb][0]}", line)

    def test_duration(self) -> None:
        """
        L{commands.duration} gives seconds for 1 to 6 digits and a unit, else C{None}.
        """
        self.assertEqual(commands.duration("90s"), 90.0)
        self.assertEqual(commands.duration("999999w"), 999999 * 604800.0)
        for word in ("", "10", "m", "1000000m", "-5m", "1.5h", "\u0665m", "0d"):
            self.assertIsNone(commands.duration(word), word)


class BadArgumentsTests(SynchronousTestCase):
    """
    Arguments that do not fit a verb are refused with C{bad-arguments} and
    the verb's usage from L{COMMANDS}.
    """

    BAD = {
        "nick": ["/nick", "/nick two words"],
        "msg": ["/msg", "/msg bob"],
        "me": ["/me"],
        "join": ["/join", "/join #a #b"],
        "list": ["/list #a #b", "/users #a #b"],
        "whois": ["/whois", "/whois a b"],
        "history": [
            "/history 5 6", "/history #a #b", "/history 5 #a x", "/history -1",
            "/history \u0665", "/history bob #a", "/history #a bob", "/history bob carol",
            "/history before", "/history 5 before", "/history before 0", "/history before x",
            "/history before -3", "/history before 1 before 2", "/history before \u0665",
            "/history before 1" + "0" * 18,
        ],
        "register": ["/register", "/register a b"],
        "login": ["/login", "/login alice", "/login alice pw extra"],
        "password": ["/password", "/password old", "/password old new extra"],
        "upload": [
            "/upload", "/upload bob", "/upload bob a.bin", "/upload bob a.bin big", "/upload bob 100",
            f"/upload bob 12 {SHA}", "/upload bob a.bin -5", "/upload bob a.bin 1" + "0" * 18,
        ],
        "download": ["/download", "/download x", "/download 7 x", "/download 7 8 9", "/download -1"],
        "format": ["/format", "/format xml", "/format json text"],
    }

    def test_usage_of_each_verb(self) -> None:
        """
        Each malformed line raises L{errors.BadArguments} whose text is C{usage: } and the verb's usage.
        """
        for verb, lines in self.BAD.items():
            for line in lines:
                error = self.assertRaises(errors.BadArguments, request, line)
                self.assertEqual(str(error), f"usage: {COMMANDS[verb][0]}", line)
                self.assertEqual(error.code, "bad-arguments")

    def test_usage_helper(self) -> None:
        """
        L{commands.usage} builds that error for any verb.
        """
        error = commands.usage("upload")
        self.assertIsInstance(error, errors.BadArguments)
        self.assertEqual(str(error), "usage: /upload TARGET NAME SIZE [SHA256]")


class PrecedenceTests(SynchronousTestCase):
    """
    A line is refused for the first of: an unknown verb, a verb that needs
    a nick before there is one, arguments that do not fit.
    """

    def test_unknown_command_first(self) -> None:
        """
        An unknown verb is C{unknown-command}, registered or not.
        """
        for registered in (False, True):
            error = self.assertRaises(errors.UnknownCommand, request, "/frobnicate now", registered)
            self.assertEqual(str(error), "unknown command /frobnicate: try /help")
            self.assertEqual(error.code, "unknown-command")

    def test_not_registered_before_bad_arguments(self) -> None:
        """
        Before registration a verb needing a nick is C{not-registered}, even with bad arguments.
        """
        error = self.assertRaises(errors.NotRegistered, request, "/join", False)
        self.assertEqual(str(error), "choose a nick before /join: /nick NAME")
        self.assertEqual(error.code, "not-registered")
        self.assertRaises(errors.NotRegistered, request, "/download x", False)

    def test_not_registered_names_the_verb_of_an_alias(self) -> None:
        """
        An alias refused before registration is named by its verb.
        """
        error = self.assertRaises(errors.NotRegistered, request, "/away lunch", False)
        self.assertEqual(str(error), "choose a nick before /status: /nick NAME")

    def test_bad_arguments_once_registered(self) -> None:
        """
        Once registered, the same line is C{bad-arguments}.
        """
        error = self.assertRaises(errors.BadArguments, request, "/join", True)
        self.assertEqual(str(error), "usage: /join #ROOM")

    def test_unregistered_verbs_checked_for_arguments(self) -> None:
        """
        A verb allowed before registration is parsed before it, bad arguments refused as such.
        """
        error = self.assertRaises(errors.BadArguments, request, "/nick", False)
        self.assertEqual(str(error), "usage: /nick NEW [--no-join]")
        error = self.assertRaises(errors.BadArguments, request, "/format xml", False)
        self.assertEqual(str(error), "usage: /format text|json")

    def test_which_verbs_work_before_registration(self) -> None:
        """
        Exactly help, format, starttls, ping, nick, login and quit (and /exit) parse before registration.
        """
        self.assertEqual(UNREGISTERED, {"help", "format", "starttls", "ping", "nick", "login", "quit"})
        self.assert_unregistered({
            "/help": Help(""),
            "/format json": Format("json"),
            "/starttls": StartTLS(),
            "/ping x": Ping("x"),
            "/nick alice": Nick("alice"),
            "/login alice pw": Login("alice", "pw"),
            "/quit": Quit("goodbye"),
            "/exit": Quit("goodbye"),
        })
        for verb in set(COMMANDS) - UNREGISTERED:
            self.assertRaises(errors.NotRegistered, request, f"/{verb}", False)

    def assert_unregistered(self, cases: dict[str, Request]) -> None:
        """
        Assert that each line of C{cases} parses to its request before registration.
        """
        for line, expected in cases.items():
            self.assertEqual(request(line, registered=False), expected, line)


class HelpTests(SynchronousTestCase):
    """
    L{help_text}: the text of C{/help}.
    """

    def test_all(self) -> None:
        """
        Without a topic: a heading, then each verb's usage and description in table order, aligned.
        """
        lines = help_text("").split("\n")
        self.assertEqual(
            lines[0],
            "Commands (a line not starting with / is said to your current room; // sends a literal /):",
        )
        self.assertEqual(len(lines), 1 + len(COMMANDS))
        width = max(len(usage) for usage, _ in COMMANDS.values())
        for line, (usage, what) in zip(lines[1:], COMMANDS.values(), strict=True):
            self.assertEqual(line, "  " + usage.ljust(width) + "  " + what)
        self.assertIn("  /help [COMMAND]", lines[1])
        self.assertTrue(lines[-1].startswith("  /quit [REASON]"))

    def test_one_verb(self) -> None:
        """
        With a verb, with or without its C{/} and in any case: its usage and description.
        """
        expected = "/nick NEW [--no-join]: picks your nick (and joins #lobby, unless --no-join), or changes it"
        for topic in ("nick", "/nick", "NICK"):
            self.assertEqual(help_text(topic), expected, topic)

    def test_alias(self) -> None:
        """
        With an alias: the help of its verb.
        """
        self.assertEqual(
            help_text("users"), "/list [#ROOM]: lists a room's users with status and idle time (alias /users)"
        )
        self.assertEqual(help_text("/away"), help_text("status"))
        self.assertEqual(help_text("exit"), help_text("quit"))

    def test_unknown(self) -> None:
        """
        An unknown topic is C{bad-arguments}, naming it.
        """
        error = self.assertRaises(errors.BadArguments, help_text, "/frobnicate")
        self.assertEqual(str(error), "no command /frobnicate: /help lists them")


class TableTests(SynchronousTestCase):
    """
    The verb table, the parsers and the help agree.
    """

    def test_every_verb_parses_and_has_help(self) -> None:
        """
        Every verb of L{COMMANDS} parses (or asks for its own usage) and has its own help entry.
        """
        for verb, (usage, what) in COMMANDS.items():
            self.assertTrue(usage.startswith(f"/{verb}"), usage)
            self.assertTrue(what, verb)
            self.assertEqual(help_text(verb), f"{usage}: {what}")
            try:
                parsed = parse(wire.Command(verb, ""), registered=True)
            except errors.BadArguments as e:
                self.assertEqual(str(e), f"usage: {usage}")
            else:
                self.assertNotIsInstance(parsed, Say)
                self.assertIn(type(parsed), Request.__args__)  # type: ignore[attr-defined]

    def test_aliases_point_to_verbs(self) -> None:
        """
        Each alias names a verb of the table, and is not a verb itself.
        """
        self.assertEqual(ALIASES, {"users": "list", "away": "status", "exit": "quit"})
        for alias, verb in ALIASES.items():
            self.assertIn(verb, COMMANDS)
            self.assertNotIn(alias, COMMANDS)
        self.assertLessEqual(UNREGISTERED, set(COMMANDS))
