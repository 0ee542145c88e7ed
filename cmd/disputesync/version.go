package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func versionCmd() *subcommand {
	return &subcommand{
		name:     "version",
		synopsis: "version",
		summary:  "print version and build information",
		flags:    func(*options, *config) {},
		run: func(_ context.Context, e env, _ *config, _ *options, _ []string) error {
			fmt.Fprintf(e.stdout, "disputesync %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
						fmt.Fprintf(e.stdout, "%s=%s\n", s.Key, s.Value)
					}
				}
				for _, d := range bi.Deps {
					switch d.Path {
					case "github.com/nats-io/nats.go", "github.com/redis/go-redis/v9", "github.com/nats-io/nats-server/v2":
						fmt.Fprintf(e.stdout, "%s %s\n", d.Path, d.Version)
					}
				}
			}
			return nil
		},
	}
}
