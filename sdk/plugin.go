package sdk

import (
	"context"
	"errors"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/baepo/baepo/sdk/proto"
)

// Handshake is what the agent and a driver plugin must agree on before they
// talk. The cookie only keeps a plugin binary from being run by hand by
// mistake; it is no security measure. ProtocolVersion changes when
// sdk/proto/driver.proto changes incompatibly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BAEPO_PLUGIN",
	MagicCookieValue: "58db7c1e856acc15d46fbdf16b50ecc2",
}

// PluginName is the name a driver is served and dispensed under.
const PluginName = "driver"

// PluginMap is the host side's plugin set for plugin.ClientConfig.Plugins:
// dispensing PluginName from it returns a [Driver] that talks gRPC to the
// plugin process.
var PluginMap = map[string]plugin.Plugin{
	PluginName: &GRPCPlugin{},
}

// GRPCPlugin is the go-plugin glue of a [Driver]. On the plugin side it
// serves Impl; on the host side (Impl nil) it returns a Driver that calls
// the plugin over the connection.
type GRPCPlugin struct {
	// GRPCPlugin is served over gRPC only.
	plugin.NetRPCUnsupportedPlugin
	// Impl is the driver the plugin serves; nil on the host side.
	Impl Driver
}

// GRPCServer registers p.Impl with s. go-plugin calls it in the plugin
// process.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("sdk: GRPCPlugin has no Driver to serve")
	}
	proto.RegisterDriverServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns the host side's [Driver] over c. go-plugin calls it in
// the agent when it dispenses PluginName.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{client: proto.NewDriverClient(c)}, nil
}

// Serve serves d as a driver plugin and returns when the agent is done with
// the plugin. It is the whole main of a plugin:
//
//	func main() { sdk.Serve(New()) }
//
// The plugin logs to stderr in JSON through hclog, which go-plugin on the
// agent's side parses to route each line into the agent's log at its level;
// the agent logs a plain line at debug, and a panic's trace at error. Serve
// replaces os.Stdout and os.Stderr, and what is written to them afterwards
// is lost: a plugin logs through an hclog JSON logger made before Serve
// runs, which holds the original stderr, or reports a step's progress with
// [Progress]. Run by hand, outside the agent, the binary says it is a
// plugin and exits with status 1.
func Serve(d Driver) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Impl: d}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "driver",
			Output:     os.Stderr,
			JSONFormat: true,
			// The agent's logger filters by level: send it everything.
			Level: hclog.Trace,
		}),
	})
}
