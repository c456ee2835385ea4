import AIMDistributed
import CMPI
import XCTest

final class CommunicatorTests: XCTestCase {
    func testLaunchModeComesFromTheLauncherEnvironment() {
        XCTAssertEqual(detectLaunchMode(environment: [:]), .single)
        XCTAssertEqual(detectLaunchMode(environment: ["OMPI_COMM_WORLD_SIZE": "2"]), .mpi)
        XCTAssertEqual(detectLaunchMode(environment: ["PMI_SIZE": "4"]), .mpi)
        XCTAssertEqual(detectLaunchMode(environment: ["PMIX_RANK": "0"]), .mpi)
        XCTAssertEqual(detectLaunchMode(environment: ["AIM_DISTRIBUTED": "mpi"]), .mpi)
        XCTAssertEqual(detectLaunchMode(environment: ["OMPI_COMM_WORLD_SIZE": "2", "AIM_DISTRIBUTED": "single"]), .single)
    }

    func testLaunchedCountAndRankComeFromTheLauncherEnvironment() {
        XCTAssertEqual(launchedProcessCount(environment: [:]), 1)
        XCTAssertEqual(launchedProcessRank(environment: [:]), 0)
        XCTAssertEqual(launchedProcessCount(environment: ["OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "2"]), 3)
        XCTAssertEqual(launchedProcessRank(environment: ["OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "2"]), 2)
        XCTAssertEqual(launchedProcessCount(environment: ["PMI_SIZE": "4", "PMI_RANK": "1"]), 4)
        XCTAssertEqual(launchedProcessRank(environment: ["PMI_SIZE": "4", "PMI_RANK": "1"]), 1)
    }

    func testSingleProcessCommunicatorIsAWorldOfOne() {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual([comm.rank, comm.size, comm.localRank, comm.localSize], [0, 1, 0, 1])
        XCTAssertTrue(comm.isCoordinator)
        var x: [Float] = [1.5, -2, 3]
        x.withUnsafeMutableBufferPointer { comm.allreduceAverage($0.baseAddress!, count: 3) }
        XCTAssertEqual(x, [1.5, -2, 3])
        XCTAssertEqual(comm.allreduce([2, 3], op: .max), [2, 3])
        XCTAssertEqual(comm.broadcast([7, 8]), [7, 8])
        XCTAssertEqual(comm.allgather([1, 2, 3]), [[1, 2, 3]])
        let pending = x.withUnsafeMutableBufferPointer { comm.startAllreduceSum($0.baseAddress!, count: 3, label: "t") }
        XCTAssertTrue(pending.isComplete)
        comm.wait([pending])
        comm.barrier()
    }

    /// Issue 2: MPI_Init and MPI_Allreduce in one process (a singleton world without mpirun),
    /// first through the raw C API, then through MPICommunicator's non-blocking in-place path.
    func testMPISingletonInitAndAllreduce() throws {
        let comm = MPICommunicator.shared  // MPI_Init_thread happens here
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        XCTAssertEqual(initialized, 1)
        var size: Int32 = 0
        MPI_Comm_size(aim_mpi_comm_world(), &size)
        XCTAssertEqual(Int(size), comm.size)
        try XCTSkipIf(comm.size != 1, "this test expects to run outside mpirun (world size \(comm.size))")
        XCTAssertEqual([comm.rank, comm.localRank, comm.localSize], [0, 0, 1])

        var send: [Float] = (0..<1001).map { Float($0) * 0.25 }
        var recv = [Float](repeating: -1, count: 1001)
        let rc = MPI_Allreduce(&send, &recv, 1001, aim_mpi_float(), aim_mpi_sum(), aim_mpi_comm_world())
        XCTAssertEqual(rc, aim_mpi_success())
        XCTAssertEqual(recv, send)

        var x: [Float] = (0..<70_001).map { Float($0 % 97) }
        let want = x
        let p = x.withUnsafeMutableBufferPointer { comm.startAllreduceSum($0.baseAddress!, count: $0.count, label: "singleton iallreduce") }
        comm.progress([p])
        comm.wait([p])
        XCTAssertTrue(p.isComplete)
        XCTAssertEqual(x, want)
        XCTAssertEqual(comm.allreduce([1, 2], op: .sum, label: "metrics"), [1, 2])
        XCTAssertEqual(comm.broadcast([4, 5, 6], label: "bcast"), [4, 5, 6])
        XCTAssertEqual(comm.allgather([], label: "gather empty"), [[]])
        XCTAssertEqual(comm.allgather([9, 9], label: "gather"), [[9, 9]])
        comm.barrier(label: "barrier")
    }
}
