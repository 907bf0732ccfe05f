import Testing

@testable import FuncdHTTP

@Suite("Event loops: the affinity mask, bounded by the cgroup's CPU quota")
struct CPUAffinityTests {
    @Test("cpu.max in whole CPUs, rounded up; max, a negative quota or garbage is no limit")
    func quota() {
        #expect(CPUAffinity.quotaCPUs(cpuMax: "100000 100000\n") == 1)
        #expect(CPUAffinity.quotaCPUs(cpuMax: "150000 100000") == 2)
        #expect(CPUAffinity.quotaCPUs(cpuMax: "50000 100000") == 1)
        #expect(CPUAffinity.quotaCPUs(cpuMax: "400000 100000") == 4)
        #expect(CPUAffinity.quotaCPUs(cpuMax: "max 100000") == nil)
        #expect(CPUAffinity.quotaCPUs(cpuMax: "-1 100000") == nil)
        #expect(CPUAffinity.quotaCPUs(cpuMax: "") == nil)
    }

    @Test("never more loops than the affinity mask allows, never fewer than one")
    func bounds() {
        #expect(CPUAffinity.usableCPUs >= 1)
        #expect(CPUAffinity.usableCPUs <= CPUAffinity.affinityCPUs)
    }
}
