package piupdate

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// deadlineToken=DURATION on the kernel command line overrides
// DefaultDeadline (tests).
const deadlineToken = "appliance.trial_deadline="

// DefaultDeadline is how long a trial boot has, from init's start, for
// the new appliance to serve and commit; then the board reboots to the
// old slot. A Raspberry Pi 3 boots gokrazy in about 15 s.
const DefaultDeadline = 90 * time.Second

var rootRe = regexp.MustCompile(`^root=PARTUUID=([0-9a-f]{8})-0([23])$`)

// The tokens an image built before kernel slots left in cmdline.txt:
// gokrazy's one-shot root switch, which a slot's cmdline.txt must not
// carry (gokrazy's init would boot the other root).
var legacyTokens = []string{"gokrazy.try_boot_inactive=1", "gokrazy.switch_on_boot=1"}

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

// slotCmdline returns the running slot's cmdline.txt b made into slot
// part's: root= on part, gokrazy's one-shot tokens dropped, the rest
// (a console=, a deadline) kept as the board's owner left it.
func slotCmdline(b []byte, part int) ([]byte, error) {
	sig, _, err := parseCmdline(string(b)).root()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range parseCmdline(string(b)) {
		switch {
		case strings.HasPrefix(f, "root=") && !rootRe.MatchString(f):
			// The kernel takes the last root=: kept, it would boot the
			// new slot's kernel on the old root.
			return nil, fmt.Errorf("%q: only root=PARTUUID=%s-02 or -03 may name the root (the kernel takes the last root=, and an update changes only those)", f, sig)
		case rootRe.MatchString(f):
			out = append(out, fmt.Sprintf("root=PARTUUID=%s-%02d", sig, part))
		case !slices.ContainsFunc(legacyTokens, func(t string) bool { return strings.Contains(f, t) }):
			// gokrazy's init looks for its token anywhere in the line
			// ("gokrazy.try_boot_inactive=10" switches too): a field that
			// holds it goes.
			out = append(out, f)
		}
	}
	return []byte(strings.Join(out, " ") + "\n"), nil
}

// The firmware's config.txt names the slot it boots: os_prefix=slotN/,
// N the root partition the slot's cmdline.txt names. tryboot.txt, read
// instead of config.txt on the one boot after a reboot with the
// tryboot flag, names the slot on trial.
var prefixRe = regexp.MustCompile(`(?m)^os_prefix=slot([23])/[ \t\r]*$`)

// anyPrefixRe is any line that may set os_prefix, in any case, indented
// or spaced around '=': the firmware takes the last one it reads, so a
// line beside ours (os_prefix=other/, or one prefixRe does not match)
// would boot another slot than the one this package reads and writes.
var anyPrefixRe = regexp.MustCompile(`(?mi)^[ \t]*os_prefix[ \t]*=`)

// ErrNoSlots: a card whose config.txt names no slot.
var ErrNoSlots = errors.New("the card is laid out without kernel slots (an image built before them, or config.txt edited): flash it with a new image")

// ErrBootConfig: a config.txt whose slot line this package cannot rely
// on (edited by hand).
var ErrBootConfig = errors.New("config.txt")

// SlotDir is the boot partition's directory of slot n: its kernel,
// device trees, overlays and cmdline.txt.
func SlotDir(n int) string { return fmt.Sprintf("slot%d", n) }

// configSlot returns the slot config.txt's content b boots and where
// in b its digit lies. Exactly one os_prefix line, at the top level: a
// conditional section ([pi4]) could name another slot on some boards.
func configSlot(b []byte) (slot int, at int, err error) {
	ms := prefixRe.FindAllSubmatchIndex(b, -1)
	if len(ms) != 1 {
		return 0, 0, fmt.Errorf("%w: config.txt has %d os_prefix=slot2/ or slot3/ lines, want one", ErrNoSlots, len(ms))
	}
	if n := len(anyPrefixRe.FindAllIndex(b, -1)); n != 1 {
		return 0, 0, fmt.Errorf("%w sets os_prefix %d times: the firmware boots the last one; keep only the os_prefix=slot2/ or slot3/ line", ErrBootConfig, n)
	}
	if i := bytes.LastIndex(b[:ms[0][0]], []byte("\n[")); i >= 0 || bytes.HasPrefix(b, []byte("[")) {
		if sec := b[i+1:]; !bytes.HasPrefix(sec, []byte("[all]")) {
			return 0, 0, fmt.Errorf("%w: os_prefix is in a conditional section (%s): want it for every board", ErrBootConfig, bytes.SplitN(sec, []byte("\n"), 2)[0])
		}
	}
	at = ms[0][2]
	return int(b[at] - '0'), at, nil
}

// setConfigSlot returns config.txt's content b booting slot n: one
// byte changed.
func setConfigSlot(b []byte, n int) ([]byte, error) {
	_, at, err := configSlot(b)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(b)
	out[at] = byte('0' + n)
	return out, nil
}
