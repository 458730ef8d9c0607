package config

// Target is the machine a configuration is checked for when that is
// not this one: a Raspberry Pi image being built here, say.
type Target struct {
	// Path maps a path the configuration names (a site's root, a
	// certificate) to where that file is on this machine, and reports
	// whether it is to be checked here at all; nil checks each path as
	// it is.
	Path func(path string) (local string, check bool)
	// Rules adds the target's own checks after the usual ones. errorf
	// reports a problem about key ("server.http", "site.0.root") at
	// that key's line, or its table's, as the usual errors are.
	Rules func(c *Config, errorf func(key, format string, args ...any))
}

// ParseFor is Parse for a configuration that is to run on t: its paths
// are looked up through t.Path and t.Rules apply too. The errors of
// both come sorted by line.
func ParseFor(file string, data []byte, t Target) (*Config, error) {
	return parse(file, data, t)
}
