#!/bin/sh
# SPDX-License-Identifier: MIT
# Black-box tests of `waypost check`: the sample passes, broken configs
# report every error as file:line: message with exit 1.
. "$top_srcdir/t/lib.sh"
scratch

expect_output "sample config is OK" "OK (main domain company.dom, 3 domains, 20 router records, 3 rules)" "$WAYPOST" -c "$CONF" check
expect_exit "sample config exits 0" 0 "$WAYPOST" -c "$CONF" check
expect_exit "missing config exits 1" 1 "$WAYPOST" -c "$dir/none.conf" check
expect_output "missing config is named" "$dir/none.conf: cannot read configuration file" "$WAYPOST" -c "$dir/none.conf" check
expect_exit "no command is a usage error" 2 "$WAYPOST" -c "$CONF"
expect_exit "unknown command is a usage error" 2 "$WAYPOST" -c "$CONF" frobnicate
expect_output "--version" "waypost 0." "$WAYPOST" --version

# Several errors in several files: all reported, each with file:line.
cat > "$dir/router.table" <<'T'
good.com = other.com
<broken = x
NoSuch:<a@b.com> = c@d.com
<*a*@b.com> = x
T
cat > "$dir/w.conf" <<'C'
router: {
  table = "router.table";
  main_domain = "company.dom";
  domains = ( { name = "domain.dom"; accounts = "passwd-file:absent.passwd"; } );
  frobnicate = true;
};
C
expect_exit "broken config exits 1" 1 "$WAYPOST" -c "$dir/w.conf" check
out=$("$WAYPOST" -c "$dir/w.conf" check 2>&1)
for want in "$dir/w.conf:5: unknown setting 'frobnicate' in router"; do
    case $out in *"$want"*) ok "reports: $want" ;; *) not_ok "reports: $want"; echo "# $out" ;; esac
done

# Without the schema error the table and account errors show up together.
sed -i '/frobnicate/d' "$dir/w.conf"
out=$("$WAYPOST" -c "$dir/w.conf" check 2>&1)
for want in "$dir/w.conf:4: accounts file $dir/absent.passwd: No such file or directory" \
            "$dir/router.table:2: unterminated '<'" \
            "$dir/router.table:3: unknown prefix 'NoSuch:'" \
            "$dir/router.table:4: more than one '*' in the local part"; do
    case $out in *"$want"*) ok "reports: $want" ;; *) not_ok "reports: $want"; echo "# $out" ;; esac
done
# ": OK (" rather than "OK": the random temporary directory name may hold "OK".
check "no OK line for a broken config" sh -c "! printf '%s' \"\$1\" | grep -q ': OK ('" sh "$out"

# Warnings do not fail the check.
printf '<a@b.com> = c@d.com\n<A@B.COM> = e@d.com\n' > "$dir/dup.table"
printf 'router: { table = "dup.table"; main_domain = "company.dom"; };\n' > "$dir/dup.conf"
expect_exit "duplicate records only warn" 0 "$WAYPOST" -c "$dir/dup.conf" check
expect_output "duplicate warning names both lines" "dup.table:2: same left side as line 1; the first record is used (warning)" "$WAYPOST" -c "$dir/dup.conf" check

# Paths are relative to the config file, not to the working directory.
expect_exit "relative paths follow the config file" 0 sh -c "cd / && '$(cd "$top_builddir" && pwd)/waypost' -c '$(cd "$top_srcdir" && pwd)/conf/waypost.conf' check"

# @include'd files report their own name.
printf 'router: {\n  main_domain = "company.dom";\n  @include "extra.inc"\n};\n' > "$dir/inc.conf"
printf '  bogus = 1;\n' > "$dir/extra.inc"
expect_output "errors in an included file name that file" "extra.inc:1: unknown setting 'bogus' in router" "$WAYPOST" -c "$dir/inc.conf" check

# The run-time pass: what loads but would fail for every message, with file:line.
cat > "$dir/rt.table" <<'T'
<postmaster> = nobody-here
badport = host:26
<ok> = alice
<*@old.dom> = *@new.dom
error.dom = error 5.1.1 gone on purpose
<spam> = null
T
cat > "$dir/rt.conf" <<'C'
router: {
  table = "rt.table";
  main_domain = "company.dom";
  recipient_delimiter = "-";
  domains = (
    { name = "company.dom"; accounts = "list:alice,security";
      groups = [ "team: alice, ghost" ];
      forwarders = [ "f: x@badport" ]; },
    { name = "re.dom";
      mail_to_unknown = "Rerouted to *@re.dom"; }
  );
};
rules = (
  { name = "store"; action = ( ("Store in", "~security/outgoing") ); },
  { name = "redir"; action = ( ("Redirect to", "x@badport") ); }
);
C
expect_exit "run-time problems exit 1" 1 "$WAYPOST" -c "$dir/rt.conf" check
out=$("$WAYPOST" -c "$dir/rt.conf" check 2>&1)
for want in "rt.table:1: <postmaster@company.dom> = nobody-here: UNKNOWN for postmaster@company.dom at run time: 5.1.1" \
            "rt.table:2: badport = host:26: ERROR for x@badport at run time: 5.1.2 A port needs a relay suffix" \
            "$dir/rt.conf:7: group team@company.dom: member ghost@company.dom: UNKNOWN at run time" \
            "$dir/rt.conf:8: forwarder f@company.dom: target x@badport: ERROR at run time: 5.1.2" \
            "$dir/rt.conf:10: domain re.dom: mail_to_unknown \"Rerouted to *@re.dom\": ERROR for unknown names at run time: 5.4.6 Routing loop" \
            "$dir/rt.conf:14: rule 'store': Store in ~security/outgoing is delivered as security+outgoing@company.dom, which routes UNKNOWN" \
            "$dir/rt.conf:15: rule 'redir': Redirect to x@badport: ERROR at run time: 5.1.2" \
            "$dir/rt.conf: 7 problems that would fail at run time"; do
    case $out in *"$want"*) ok "run time: $want" ;; *) not_ok "run time: $want"; echo "$out" | sed 's/^/# /' ;; esac
done
for gone in "<ok@" "old.dom" "error.dom" "spam"; do
    case $out in *"$gone"*) not_ok "not reported: $gone" ;; *) ok "not reported: $gone" ;; esac
done
# catch-alls that match their own result
printf '<*> = ann\n' > "$dir/rt.table"
expect_output "a catch-all address record that matches its result" \
    "rt.table:1: <*@company.dom> = ann: ERROR for x@company.dom at run time: 5.4.6 Routing loop detected" \
    "$WAYPOST" -c "$dir/rt.conf" check
printf '* = smarthost.via\n' > "$dir/rt.table"
expect_output "a catch-all domain record that matches its result" \
    "rt.table:1: * = smarthost.via: ERROR for x@x at run time: 5.4.6 Routing loop detected" \
    "$WAYPOST" -c "$dir/rt.conf" check
# the recipient delimiter changed back: Store in routes LOCAL again
printf '<ok> = alice\n' > "$dir/rt.table"
sed -i -e 's/recipient_delimiter = "-"/recipient_delimiter = "+"/' -e 's/, ghost//' -e 's/x@badport/alice/g' \
    -e 's/Rerouted to \*@re.dom/Rejected/' "$dir/rt.conf"
expect_exit "fixed: exit 0" 0 "$WAYPOST" -c "$dir/rt.conf" check

done_testing
