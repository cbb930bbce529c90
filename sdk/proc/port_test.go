package proc

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// A port this test listens on is taken, and the error names this process;
// once it is closed the port is free.
func TestCheckPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	err = CheckPortFree("127.0.0.1", port)
	want := fmt.Sprintf("port %d is taken (listen tcp 127.0.0.1:%d: bind: address already in use, held by pid %d (", port, port, os.Getpid())
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("CheckPortFree of a taken port = %v, want it to start %q", err, want)
	}
	l.Close()
	if err := CheckPortFree("127.0.0.1", port); err != nil {
		t.Fatalf("CheckPortFree of a free port = %v", err)
	}
}
