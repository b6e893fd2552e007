/* SPDX-License-Identifier: MIT */
/*
 * command.c - the pure parts of waypost-odmrd's command parser (command.h),
 * apart from the connection so that unit tests and the fuzzer reach them.
 */
#include "config.h"

#include <string.h>

#include "lib/address.h"
#include "lib/util.h"
#include "odmr/command.h"

/* Is the command word cmd at the start of line (then a space or the end)? */
bool wp_command_is(const char *line, const char *cmd, const char **arg)
{
    size_t n = strlen(cmd);
    if (!wp_strnieq(line, cmd, n) || (line[n] && line[n] != ' '))
        return false;
    const char *a = line + n;
    while (*a == ' ')
        a++;
    *arg = a;
    return true;
}

/* The address of "FROM:<addr> params" or "TO:<addr> params": copied into
 * out; *params points after it.  A source route (@a,@b:) is dropped. */
bool wp_command_envelope_arg(const char *arg, const char *prefix, char *out, size_t size, const char **params)
{
    size_t pl = strlen(prefix);
    if (!wp_strnieq(arg, prefix, pl))
        return false;
    const char *p = arg + pl;
    while (*p == ' ')
        p++;
    if (*p != '<')
        return false;
    p++;
    const char *start = p;
    bool quoted = false;
    for (; *p; p++) {
        /* Control characters are refused even quoted or escaped: a bare CR
         * or LF taken here would end up in a header or a DSN line. */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
        if (*p == '\\' && quoted && p[1]) {
            p++;
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return false;
        } else if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            break;
    }
    if (*p != '>')
        return false;
    size_t n = (size_t)(p - start);
    if (n > 0 && start[0] == '@') {
        const char *colon = memchr(start, ':', n);
        if (!colon)
            return false;
        n -= (size_t)(colon + 1 - start);
        start = colon + 1;
    }
    if (n >= size || n > WP_ADDR_MAX)
        return false;
    memcpy(out, start, n);
    out[n] = '\0';
    *params = p + 1;
    return true;
}
