// Command berth-logdriver is berth's container log driver on its own (see package
// logdriver): containerd's shim starts one per task, so it links nothing but the
// driver and starts in about a millisecond, where berth's own executable, which can
// stand in for it, costs some 15 ms of CPU per container to start. `make build`
// puts it beside bin/berth, where the daemon looks for it.
package main

import (
	"os"

	"github.com/berthd/berth/runtime/logdriver"
)

func main() { os.Exit(logdriver.Main()) }
