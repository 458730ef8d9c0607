module appliance

go 1.26.8

require github.com/BurntSushi/toml v1.6.0

require (
	github.com/andybalholm/brotli v1.2.8 // indirect
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
