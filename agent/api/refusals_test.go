package api

import (
	"errors"
	"testing"
)

func TestRefusals(t *testing.T) {
	cmds := []Command{{Name: "drain", Args: []string{"seconds"}}, {Name: "flush"}}
	for _, tt := range []struct {
		name    string
		command string
		args    map[string]any
		code    string // "" for none
		msg     string
	}{
		{"ok", "drain", map[string]any{"command": "drain", "seconds": 30}, "", ""},
		{"no arguments", "flush", map[string]any{"command": "flush"}, "", ""},
		{"not allow-listed", "migrate", nil, CodeNotFound, `command "migrate" is not allow-listed on this agent (commands: drain, flush)`},
		{"unknown argument", "drain", map[string]any{"seconds": 1, "secs": 1}, CodeBadRequest, `command drain: unknown argument "secs" (drain takes seconds)`},
		{"missing argument", "drain", map[string]any{}, CodeBadRequest, `command drain: missing argument "seconds" (drain takes seconds)`},
		{"argument of none", "flush", map[string]any{"x": 1}, CodeBadRequest, `command flush: unknown argument "x" (flush takes no arguments)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FindCommand(cmds, tt.command)
			if err == nil {
				err = c.CheckArgs(tt.args)
			}
			var e *Error
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.code != "" && (!errors.As(err, &e) || e.Code != tt.code || e.Message != tt.msg):
				t.Fatalf("err = %v, want %s %q", err, tt.code, tt.msg)
			}
		})
	}
	if got, want := UnknownStep("dance", "A/a1", []string{"stop", "start"}, "jar", nil).Message, `unknown step "dance" for A/a1 (core steps: stop, start; driver jar steps: none)`; got != want {
		t.Errorf("UnknownStep = %q, want %q", got, want)
	}
}
