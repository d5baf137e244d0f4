package dhtstore

// Trim gives back the file's mapped pages now (tests).
func (d *DB) Trim() { d.trim() }
