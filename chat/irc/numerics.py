# -*- test-case-name: tests.test_irc -*-
"""
The IRC numeric replies this front end sends (RFC 2812 section 5 as the
"Modern IRC" document gives them), and the map from the chat's wire error
codes (L{chat.errors}) to IRC error numerics.
"""

from __future__ import annotations

from chat import errors

RPL_WELCOME = "001"
RPL_YOURHOST = "002"
RPL_CREATED = "003"
RPL_MYINFO = "004"
RPL_ISUPPORT = "005"
RPL_UMODEIS = "221"
RPL_AWAY = "301"
RPL_USERHOST = "302"
RPL_ISON = "303"
RPL_UNAWAY = "305"
RPL_NOWAWAY = "306"
RPL_WHOISUSER = "311"
RPL_WHOISSERVER = "312"
RPL_ENDOFWHO = "315"
RPL_WHOISIDLE = "317"
RPL_ENDOFWHOIS = "318"
RPL_WHOISCHANNELS = "319"
RPL_LISTSTART = "321"
RPL_LIST = "322"
RPL_LISTEND = "323"
RPL_CHANNELMODEIS = "324"
RPL_WHOISACCOUNT = "330"
RPL_NOTOPIC = "331"
RPL_TOPIC = "332"
RPL_INVITING = "341"
RPL_WHOREPLY = "352"
RPL_NAMREPLY = "353"
RPL_ENDOFNAMES = "366"
RPL_ENDOFBANLIST = "368"
RPL_MOTD = "372"
RPL_MOTDSTART = "375"
RPL_ENDOFMOTD = "376"
RPL_TIME = "391"
RPL_WHOISSECURE = "671"
RPL_LOGGEDIN = "900"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"

ERR_NOSUCHNICK = "401"
ERR_NOSUCHCHANNEL = "403"
ERR_CANNOTSENDTOCHAN = "404"
ERR_NORECIPIENT = "411"
ERR_NOTEXTTOSEND = "412"
ERR_INPUTTOOLONG = "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NOMOTD = "422"
ERR_NONICKNAMEGIVEN = "431"
ERR_ERRONEUSNICKNAME = "432"
ERR_NICKNAMEINUSE = "433"
ERR_NOTONCHANNEL = "442"
ERR_NOTREGISTERED = "451"
ERR_NEEDMOREPARAMS = "461"
ERR_ALREADYREGISTERED = "462"
ERR_PASSWDMISMATCH = "464"
ERR_UNKNOWNMODE = "472"
ERR_INVITEONLYCHAN = "473"
ERR_BANNEDFROMCHAN = "474"
ERR_CHANOPRIVSNEEDED = "482"
ERR_NOOPERHOST = "491"
ERR_UMODEUNKNOWNFLAG = "501"

ERRORS: dict[str, str] = {
    errors.NoSuchNick.code: ERR_NOSUCHNICK,
    errors.NoSuchRoom.code: ERR_NOSUCHCHANNEL,
    errors.NotInRoom.code: ERR_NOTONCHANNEL,
    errors.NickTaken.code: ERR_NICKNAMEINUSE,
    errors.NickRegistered.code: ERR_NICKNAMEINUSE,
    errors.NickInvalid.code: ERR_ERRONEUSNICKNAME,
    errors.NotRegistered.code: ERR_NOTREGISTERED,
    errors.UnknownCommand.code: ERR_UNKNOWNCOMMAND,
    errors.BadArguments.code: ERR_NEEDMOREPARAMS,
    errors.NotOperator.code: ERR_CHANOPRIVSNEEDED,
    errors.Banned.code: ERR_BANNEDFROMCHAN,
    errors.InviteOnly.code: ERR_INVITEONLYCHAN,
    errors.Muted.code: ERR_CANNOTSENDTOCHAN,
    errors.LineTooLong.code: ERR_INPUTTOOLONG,
    errors.AuthFailed.code: ERR_PASSWDMISMATCH,
    errors.AuthNeedsTLS.code: ERR_PASSWDMISMATCH,
}
"""
Wire error code (L{chat.errors.ChatError.code}) to the IRC numeric that
reports it. A code not here (C{busy}, C{flood}, C{quota}, ...) reaches the
IRC client as a C{NOTICE} with the error's text.
"""

TARGETED = frozenset({
    ERR_NOSUCHNICK, ERR_NOSUCHCHANNEL, ERR_NOTONCHANNEL, ERR_NICKNAMEINUSE, ERR_ERRONEUSNICKNAME,
    ERR_UNKNOWNCOMMAND, ERR_NEEDMOREPARAMS, ERR_CHANOPRIVSNEEDED, ERR_BANNEDFROMCHAN, ERR_INVITEONLYCHAN,
    ERR_CANNOTSENDTOCHAN,
})
"""
The error numerics whose first parameter after the client's nick names
what was refused (a nick, a channel, or the command): the request's target.
"""
