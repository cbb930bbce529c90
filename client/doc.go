// Package client is the baepo command-line client.
//
// It owns what a person or a Jenkins job touches: the commands and their
// flags (a template's params become flags of `baepo run`, so run's own flags
// are the names a param cannot have), Jenkins' build variables, the
// inventory of servers and groups, where templates are loaded from, the
// agent HTTP client that implements [engine.Target], signal handling, exit
// codes and the output: a human log on stderr, a summary table on stdout,
// JSON and JUnit reports on request.
//
// It must not know how a flow runs (batches, rollback, the Lua sandbox: that
// is package engine) nor how an agent drives an app server (package agent).
package client
