module litepool-demo/litepool

go 1.23

require (
	github.com/litepool/litepool/go v0.0.0
	litepool-demo/workload v0.0.0
)

replace (
	github.com/litepool/litepool/go => ../../../go
	litepool-demo/workload => ../workload
)
