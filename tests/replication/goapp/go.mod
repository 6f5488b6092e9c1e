module github.com/litepool/litepool/tests/replication/goapp

go 1.23

require github.com/litepool/litepool/go v0.0.0

replace github.com/litepool/litepool/go => ../../../go
