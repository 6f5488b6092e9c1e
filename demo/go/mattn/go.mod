module litepool-demo/mattn

go 1.23

require (
	github.com/mattn/go-sqlite3 v1.14.53
	litepool-demo/workload v0.0.0
)

replace litepool-demo/workload => ../workload
