// Command disputesync is the dispute sync worker: a poller that turns a
// provider's dispute list into JetStream events, a worker that applies
// operators' action commands to the providers exactly once, a receiver of
// the providers' notifications, and the tools around them. Run
// "disputesync --help" for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a subcommand gets from the outside world.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// subcommand is one "disputesync NAME".
type subcommand struct {
	name     string
	synopsis string
	summary  string
	detail   string
	// flags registers the subcommand's flags on o, filling c.
	flags func(o *options, c *config)
	// run executes it; args are what is left after the flags.
	run func(ctx context.Context, e env, c *config, o *options, args []string) error
}

func subcommands() []*subcommand {
	return []*subcommand{devCmd(), runCmd(), sandboxCmd(), actionCmd(), tailCmd(), setupCmd(), versionCmd()}
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return run(ctx, []string{args[1], "--help"}, getenv, stdout, stderr)
		}
		mainUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var sc *subcommand
	for _, s := range subcommands() {
		if s.name == args[0] {
			sc = s
		}
	}
	if sc == nil {
		fmt.Fprintf(stderr, "disputesync: unknown subcommand %q\n\n", args[0])
		mainUsage(stderr)
		return exitUsage
	}
	c := &config{}
	o := newOptions(sc.name)
	sc.flags(o, c)
	err := o.parse(args[1:], getenv)
	if errors.Is(err, errHelp) {
		o.usage(stdout, sc.synopsis, sc.summary+"\n\n"+sc.detail)
		return exitOK
	}
	if err == nil {
		err = c.validate(o.usedFlags())
	}
	if err == nil {
		err = sc.run(ctx, e, c, o, o.args())
	}
	return report(stderr, sc.name, err)
}

// exitCoder lets a subcommand choose its exit status (the action command's
// outcomes).
type exitCoder interface{ ExitCode() int }

func report(stderr io.Writer, name string, err error) int {
	if err == nil {
		return exitOK
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "disputesync %s: %s\n", name, msg)
		}
		return ec.ExitCode()
	}
	if errors.Is(err, errUsage) {
		msg := err.Error()
		if len(msg) > len("usage: ") && msg[:7] == "usage: " {
			msg = msg[7:]
		}
		fmt.Fprintf(stderr, "disputesync %s: %s\n(see disputesync %s --help)\n", name, msg, name)
		return exitUsage
	}
	fmt.Fprintf(stderr, "disputesync %s: %v\n", name, err)
	return exitError
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, `disputesync syncs card-payment disputes between providers and NATS JetStream.

Usage: disputesync <subcommand> [flags]

Subcommands:
`)
	for _, s := range subcommands() {
		fmt.Fprintf(w, "  %-9s %s\n", s.name, s.summary)
	}
	fmt.Fprint(w, `
Every flag also reads the environment variable DISPUTESYNC_<FLAG_IN_UPPER_SNAKE>
(flags win); secret flags also accept DISPUTESYNC_<FLAG>_FILE.
Run "disputesync <subcommand> --help" for its flags.

Start here: "disputesync dev" runs the whole system on this machine.
`)
}
