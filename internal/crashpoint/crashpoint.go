package crashpoint

import (
	"fmt"
	"os"
	"syscall"
)

// env names the point at which a test wants the process killed.
const env = "BAEPO_TEST_CRASH_AT"

// At kills the process with SIGKILL, after saying so on stderr, when the
// test asked for a crash at point; otherwise it returns at once.
func At(point string) {
	if os.Getenv(env) != point || point == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint: killing the process at %s\n", point)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not delivered synchronously; never return
}
