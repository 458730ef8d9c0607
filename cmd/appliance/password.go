package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"appliance/rewrite"
)

// hashPassword reads the password and prints its hash; the password is
// never echoed or logged. On a terminal it prompts on stderr, turns echo
// off and asks twice; from a pipe it reads one line, silently.
func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "appliance hash-password:", err)
		return 1
	}
	var pw string
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		r := bufio.NewReader(f)
		first, err := readHidden(f, r, stderr, "Password: ")
		if err != nil {
			return fail(err)
		}
		if first == "" {
			return fail(errors.New("empty password"))
		}
		again, err := readHidden(f, r, stderr, "Again, to confirm: ")
		if err != nil {
			return fail(err)
		}
		if again != first {
			return fail(errors.New("the passwords do not match"))
		}
		pw = first
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fail(err)
		}
		pw = strings.TrimRight(line, "\r\n")
		if pw == "" {
			return fail(errors.New("empty password (give it on standard input)"))
		}
	}
	fmt.Fprintln(stdout, rewrite.HashPassword(pw))
	return 0
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readHidden prints prompt on w and reads a line from the terminal f
// (through r) with echo off, restoring the terminal after.
func readHidden(f *os.File, r *bufio.Reader, w io.Writer, prompt string) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	// Echo is off before the prompt shows, so nothing typed after it
	// is echoed.
	fmt.Fprint(w, prompt)
	line, err := r.ReadString('\n')
	fmt.Fprintln(w) // the newline the terminal did not echo
	if err != nil && !(err == io.EOF && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
