/*
 * Raw MPI between two ranks, the yardstick of bench_hosts.sh: a stream of
 * 64-byte messages, one MPI_Send per record; 1 MiB messages; and a 64-byte
 * ping-pong, each from one buffer written once. Rank 0 prints one line per
 * figure:
 *   mpi64 <messages/s>   mpi1m <bytes/s>   pingpong <one-way us>
 * Run under mpirun -n 2 with the same options as the bridged runs.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	long n64 = argc > 1 ? atol(argv[1]) : 1000000;
	long n1m = argc > 2 ? atol(argv[2]) : 512;
	char small[64] = {0};
	char *big = malloc(1 << 20);
	if (!big)
		MPI_Abort(MPI_COMM_WORLD, 1);
	/* real bytes: a buffer never written reads as the zero page, which
	 * no bridged record does (it would flatter the yardstick's sender) */
	memset(big, 0x5a, 1 << 20);
	memset(small, 0x5a, sizeof small);
	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	for (long i = 0; i < n64; i++) {
		if (rank == 0)
			MPI_Send(small, 64, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
		else
			MPI_Recv(small, 64, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	double t1 = MPI_Wtime();
	for (long i = 0; i < n1m; i++) {
		if (rank == 0)
			MPI_Send(big, 1 << 20, MPI_BYTE, 1, 2, MPI_COMM_WORLD);
		else
			MPI_Recv(big, 1 << 20, MPI_BYTE, 0, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	double t2 = MPI_Wtime();
	const int pings = 10000;
	for (int i = 0; i < pings; i++) {
		if (rank == 0) {
			MPI_Send(small, 64, MPI_BYTE, 1, 3, MPI_COMM_WORLD);
			MPI_Recv(small, 64, MPI_BYTE, 1, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(small, 64, MPI_BYTE, 0, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			MPI_Send(small, 64, MPI_BYTE, 0, 3, MPI_COMM_WORLD);
		}
	}
	double t3 = MPI_Wtime();
	if (rank == 0) {
		printf("mpi64 %.0f\n", (double)n64 / (t1 - t0));
		printf("mpi1m %.0f\n", (double)n1m * (1 << 20) / (t2 - t1));
		printf("pingpong %.2f\n", (t3 - t2) / pings / 2 * 1e6);
	}
	free(big);
	MPI_Finalize();
	return 0;
}
