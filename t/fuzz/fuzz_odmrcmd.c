/* SPDX-License-Identifier: MIT */
/* libFuzzer target: odmrd's command parser (odmr/command.h) on one command
 * line, with the property the intake relies on: an envelope address taken
 * holds no control character and fits its buffer. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "odmr/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1100) /* WP_ODMR_LINE_MAX-ish: the line reader cuts longer ones */
        return 0;
    char line[1101];
    memcpy(line, data, size);
    line[size] = '\0';
    static const char *const cmds[] = {"MAIL", "RCPT", "LHLO", "EHLO", "AUTH", "ATRN", "NOOP", "QUIT"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *arg;
        if (!wp_command_is(line, cmds[i], &arg))
            continue;
        char addr[WP_ADDR_MAX + 1];
        const char *params;
        const char *prefix = i == 0 ? "FROM:" : "TO:";
        if (wp_command_envelope_arg(arg, prefix, addr, sizeof(addr), &params)) {
            size_t n = strlen(addr);
            if (n > WP_ADDR_MAX || params < arg || params > line + size)
                abort();
            for (size_t k = 0; k < n; k++)
                if ((unsigned char)addr[k] < 0x20 || addr[k] == 0x7f)
                    abort();
        }
    }
    return 0;
}
