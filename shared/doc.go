// Package shared is the root of the cross-service plumbing of Car Build: the
// protos and their generated code (gen), and the pieces every service uses the
// same way (config, logging, metrics, database, grpcserver, grpcclient). It
// never holds business rules.
package shared
