// Package proto is the generated gRPC code of driver.proto, the protocol
// between the agent and a driver plugin. Plugin authors do not use it:
// package sdk adapts it to the sdk.Driver interface on both sides.
//
// The generator needs protoc (Debian: protobuf-compiler), protoc-gen-go and
// protoc-gen-go-grpc on PATH; `make proto` runs it.
package proto

// The .proto file is named from the module root (sdk/proto/driver.proto), so
// that its name in the global protobuf registry does not clash with another
// package's driver.proto in a plugin's binary.
//
//go:generate protoc --proto_path=../.. --go_out=../.. --go_opt=paths=source_relative --go-grpc_out=../.. --go-grpc_opt=paths=source_relative sdk/proto/driver.proto
