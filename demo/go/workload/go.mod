module litepool-demo/workload

go 1.23
