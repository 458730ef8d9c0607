package piupdate

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The kernel command line tokens of an update.
const (
	// trialToken in cmdline.txt makes gokrazy's init boot the other
	// root once; it replaces it with switchedToken first.
	trialToken    = "gokrazy.try_boot_inactive=1"
	switchedToken = "gokrazy.switch_on_boot=1"
	// deadlineToken=DURATION overrides DefaultDeadline (tests).
	deadlineToken = "appliance.trial_deadline="
)

// DefaultDeadline is how long a trial boot has, from init's start, for
// the new appliance to serve and commit; then the board reboots to the
// old root. A Raspberry Pi 3 boots gokrazy in about 15 s.
const DefaultDeadline = 90 * time.Second

// CmdlinePad is the room the builder leaves at the end of cmdline.txt,
// in spaces before the newline: the file is rewritten in place, never
// grown (gokrazy writes it at its FAT extent).
var CmdlinePad = strings.Repeat(" ", len(trialToken)+1)

var rootRe = regexp.MustCompile(`^root=PARTUUID=([0-9a-f]{8})-0([23])$`)

// cmdline is a kernel command line: /proc/cmdline, or cmdline.txt.
type cmdline []string

func parseCmdline(s string) cmdline { return strings.Fields(s) }

// root returns the disk signature and root partition (2 or 3) of
// root=PARTUUID=SIG-0N.
func (c cmdline) root() (sig string, part int, err error) {
	for _, f := range c {
		if m := rootRe.FindStringSubmatch(f); m != nil {
			return m[1], int(m[2][0] - '0'), nil
		}
	}
	return "", 0, fmt.Errorf("no root=PARTUUID=<disk>-02 or -03 in the kernel command line %q", strings.Join(c, " "))
}

func (c cmdline) has(token string) bool {
	for _, f := range c {
		if f == token {
			return true
		}
	}
	return false
}

// Deadline is the trial deadline this command line sets, or
// DefaultDeadline.
func (c cmdline) Deadline() time.Duration {
	for _, f := range c {
		if v, ok := strings.CutPrefix(f, deadlineToken); ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				return d
			}
		}
	}
	return DefaultDeadline
}

// other is the root partition that is not part.
func other(part int) int { return 5 - part }

// rewriteCmdline returns cmdline.txt's content b with root= on part,
// the trial token if trial, gokrazy's leftover token dropped, and the
// same length: padded with spaces before the newline, or an error when
// it does not fit.
func rewriteCmdline(b []byte, part int, trial bool) ([]byte, error) {
	sig, _, err := parseCmdline(string(b)).root()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range parseCmdline(string(b)) {
		switch {
		case f == trialToken || f == switchedToken:
		case rootRe.MatchString(f):
			out = append(out, fmt.Sprintf("root=PARTUUID=%s-%02d", sig, part))
		default:
			out = append(out, f)
		}
	}
	if trial {
		out = append(out, trialToken)
	}
	line, end := strings.Join(out, " "), ""
	if strings.HasSuffix(string(b), "\n") {
		end = "\n"
	}
	pad := len(b) - len(line) - len(end)
	if pad < 0 {
		return nil, fmt.Errorf("cmdline.txt has no room for %q (an image built before updates: flash the card with a new one)", trialToken)
	}
	return []byte(line + strings.Repeat(" ", pad) + end), nil
}
