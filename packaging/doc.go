// Package packaging holds what installs the appliance on a host: the
// hardened systemd service and its socket units (systemd/). Its tests
// hold them to systemd's own verifier and security review.
package packaging
