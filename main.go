// Command zimage is Z Image: a self-hosted AI image generator in one binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"zimage/app/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx)
	stop()
	os.Exit(code)
}
