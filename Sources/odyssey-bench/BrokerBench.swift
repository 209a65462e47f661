// placeholder
func brokerBenchmarks(_ env: BenchEnv) -> [BenchRow] { [] }
