//go:build linux

// Command init is process 1 of the Raspberry Pi image: gokrazy mounts
// the file systems (the read-only root, /perm for the config, the site
// and state_dir) and supervises the platform's DHCP, NTP and entropy
// services and the appliance, restarting any that exit.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"

	"github.com/gokrazy/gokrazy"
)

// buildTimestamp is set by the image builder (-X main.buildTimestamp=...).
var buildTimestamp = "unknown"

// The config on the writable partition, else the one built into the
// root file system (if /perm could not be mounted).
var configs = []string{"/perm/appliance/appliance.toml", "/etc/appliance/appliance.toml"}

func main() {
	log.SetFlags(0)
	fmt.Printf("appliance image built %s\n", buildTimestamp)
	if err := gokrazy.Boot(buildTimestamp); err != nil {
		log.Fatal(err)
	}
	config := configs[len(configs)-1]
	for _, c := range configs {
		if _, err := os.Stat(c); err == nil {
			config = c
			break
		}
	}
	services := []*gokrazy.Service{
		gokrazy.NewService(exec.Command("/gokrazy/dhcp")),
		gokrazy.NewService(exec.Command("/gokrazy/ntp")),
		gokrazy.NewService(exec.Command("/gokrazy/randomd")),
		// Not a wait-for-clock service: plain HTTP and cached
		// certificates serve at once; ACME retries until NTP has set
		// the clock.
		gokrazy.NewService(exec.Command("/user/appliance", "-config", config)),
	}
	if err := gokrazy.SuperviseServices(services); err != nil {
		log.Fatal(err)
	}
	select {}
}
