//go:build linux

// Command init is process 1 of the Raspberry Pi image: gokrazy mounts
// the file systems (the read-only root, /perm for the config, the site
// and state_dir) and supervises the platform's DHCP, NTP and entropy
// services and the appliance, restarting any that exit.
//
// The appliance runs under a second copy of this program, started with
// the appliance's path as its argv[0]: it copies the appliance's
// standard output and error to gokrazy (as any service's) and to the
// kernel log, which the console shows (a monitor on HDMI, a serial
// console if cmdline.txt names one), so that a board without a shell
// still says why it does not serve.
//
// On the trial boot of a new slot (appliance update, package
// piupdate), it gives the new appliance piupdate.DefaultDeadline (90 s;
// appliance.trial_deadline=DURATION on the kernel command line
// overrides it) to serve and commit; then, not committed, it reboots,
// and the board comes back on the old slot: kernel and root.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gokrazy/gokrazy"

	"appliance/piupdate"
)

// buildTimestamp is set by the image builder (-X main.buildTimestamp=...).
var buildTimestamp = "unknown"

// The config on the writable partition, else the one built into the
// root file system (if /perm could not be mounted).
var configs = []string{"/perm/appliance/appliance.toml", "/etc/appliance/appliance.toml"}

const appliance = "/user/appliance"

func main() {
	if os.Getpid() != 1 && len(os.Args) > 0 && os.Args[0] == appliance {
		var console io.Writer = io.Discard
		if kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err != nil {
			fmt.Fprintf(os.Stderr, "init: the appliance's log does not go to the console: %v\n", err)
		} else {
			console = kmsg
		}
		os.Exit(relay(os.Args, console))
	}
	log.SetFlags(0)
	fmt.Printf("appliance image built %s\n", buildTimestamp)
	if err := gokrazy.Boot(buildTimestamp); err != nil {
		log.Fatal(err)
	}
	// Every line the appliance writes to the kernel log reaches the
	// console: no rate limit on /dev/kmsg (by default 10 lines in 5 s).
	if err := os.WriteFile("/proc/sys/kernel/printk_devkmsg", []byte("on\n"), 0); err != nil {
		log.Printf("printk_devkmsg: %v", err)
	}
	config := configs[len(configs)-1]
	for _, c := range configs {
		if _, err := os.Stat(c); err == nil {
			config = c
			break
		}
	}
	services := []*gokrazy.Service{
		gokrazy.NewService(exec.Command("/gokrazy/dhcp")),
		gokrazy.NewService(exec.Command("/gokrazy/ntp")),
		gokrazy.NewService(exec.Command("/gokrazy/randomd")),
		// Not a wait-for-clock service: plain HTTP and cached
		// certificates serve at once; ACME retries until NTP has set
		// the clock. This program relays its log (see above).
		gokrazy.NewService(&exec.Cmd{Path: "/gokrazy/init", Args: []string{appliance, "-config", config}}),
	}
	if err := gokrazy.SuperviseServices(services); err != nil {
		log.Fatal(err)
	}
	board := piupdate.Gokrazy()
	trialDeadline(board, func() {
		if err := board.Reboot(context.Background()); err != nil {
			log.Printf("update: reboot: %v; rebooting at once", err)
			syscall.Sync()
			syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
		}
	})
	select {}
}

// trialDeadline, on the trial boot of a new slot (config.txt boots the
// other one: the firmware read tryboot.txt), reboots the board at the
// deadline unless the appliance has committed the slot by then; the
// firmware then boots the slot config.txt names.
func trialDeadline(board *piupdate.Board, reboot func()) {
	st, err := board.State()
	switch {
	case err != nil:
		log.Printf("update: %v", err)
		return
	case !st.Trial:
		return
	}
	d := board.Deadline()
	log.Printf("update: trial boot of slot %d: the appliance has %s to serve and commit it, or the board boots slot %d again", st.Partition, d, 5-st.Partition)
	time.AfterFunc(d, func() {
		st, err := board.State()
		if err == nil && st.Committed {
			log.Printf("update: slot %d is committed", st.Partition)
			return
		}
		if err != nil {
			log.Printf("update: %v", err)
		}
		log.Printf("update: slot %d not committed within %s: rebooting to the old one", st.Partition, d)
		reboot()
	})
}

// relay runs args, copying its standard output and error to ours and,
// line by line, to console (the kernel log). It returns the exit status
// to exit with: the appliance's, so that gokrazy sees it as its own.
func relay(args []string, console io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	var mu sync.Mutex // one line at a time from either stream
	stdout, stderr := &lines{w: console, mu: &mu}, &lines{w: console, mu: &mu}
	cmd.Stdout, cmd.Stderr = tee{os.Stdout, stdout}, tee{os.Stderr, stderr}
	// gokrazy signals a service's whole process group, the appliance
	// with it: here the signals are only caught, not to die of them
	// before the appliance has finished.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
		}
	}()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(tee{os.Stderr, stderr}, "%v\n", err)
		return 1
	}
	err := cmd.Wait()
	stdout.Write([]byte("\n")) // a last line without its newline
	stderr.Write([]byte("\n"))
	status := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		status = ee.ExitCode()
	case err != nil:
		status = 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s stopped: %v\n", args[0], err)
	}
	return status
}

// tee writes to both writers and never fails: a log that cannot be
// written must not stop the appliance.
type tee [2]io.Writer

func (t tee) Write(p []byte) (int, error) {
	t[0].Write(p)
	t[1].Write(p)
	return len(p), nil
}

// maxLine is the longest line written to the kernel log (whose records
// hold 1 KiB less a header); longer ones are cut.
const maxLine = 900

// lines writes each whole line to w in one write, as /dev/kmsg wants
// (a write is a record), prefixed "appliance: ".
type lines struct {
	w       io.Writer
	mu      *sync.Mutex
	partial []byte
}

func (l *lines) Write(p []byte) (int, error) {
	n := len(p)
	if len(l.partial) == 0 && len(p) == 1 && p[0] == '\n' {
		return n, nil // no empty records
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(l.partial) < maxLine {
				l.partial = append(l.partial, p[:min(len(p), maxLine-len(l.partial))]...)
			}
			break
		}
		line := append(l.partial, p[:i]...)
		l.partial = l.partial[:0]
		p = p[i+1:]
		rec := append([]byte("appliance: "), line[:min(len(line), maxLine)]...)
		l.mu.Lock()
		l.w.Write(append(rec, '\n'))
		l.mu.Unlock()
	}
	return n, nil
}
