#!/bin/sh
# Write a man(7) page for one program from its own --help, so the page
# always says what the program says (no second copy to fall out of date).
#   mk/man.sh BIN NAME "one-line summary" [SUBCOMMAND...]
# Each SUBCOMMAND's `NAME SUBCOMMAND --help` becomes a section of its own.
set -eu
bin=$1 name=$2 summary=$3
shift 3

# Verbatim text: escape backslashes, and keep lines that start with . or '
# from being read as requests.
verbatim() {
	printf '.nf\n'
	sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
	printf '.fi\n'
}

upper=$(printf '%s' "$name" | tr 'a-z' 'A-Z')
version=$("$bin" --version 2>/dev/null | head -n 1 | awk '{print $NF}')
printf '.TH %s 1 "" "sandbox %s" "User Commands"\n' "$upper" "$version"
printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
printf '.SH DESCRIPTION\n'
"$bin" --help 2>&1 | verbatim
for sub in "$@"; do
	up=$(printf '%s' "$sub" | tr 'a-z' 'A-Z')
	printf '.SH %s %s\n' "$upper" "$up"
	"$bin" "$sub" --help 2>&1 | verbatim
done
cat <<EOT
.SH FILES
.TP
.I ~/.config/sandbox/policy.yaml
the user's own policy
.TP
.I \$XDG_STATE_HOME/sandbox/
named sandboxes and run directories (audit logs)
.TP
.I PREFIX/share/sandbox/
presets and agent descriptors (policies/), the guest kernel and
initramfs (guest/), root images (images/)
.SH SEE ALSO
.BR sandbox-launch (1),
.BR sandbox-proxy (1),
.BR sandbox-policy (1),
.BR sandbox-audit (1),
.BR sandbox-vsock (1).
The documents in the source tree's docs/ folder describe the design,
the policy format and the audit log in full.
EOT
