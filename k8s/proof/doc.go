// Package proof checks the Kubernetes dev loop without a cluster: it renders
// every kustomize overlay, decodes each object strictly into its API type,
// checks invariants (selectors, probes, resources, security, network flows,
// images), compares ports, probes and environment variables with what the real
// binaries accept (their -h output), evaluates the Tiltfile in a Starlark
// interpreter that records Tilt's calls, and decodes ctlptl.yaml with the Kind
// cluster types.
//
// Run it outside the workspace: cd k8s/proof && GOWORK=off go test ./...
package proof
