#include <mpi.h>
// Open MPI's handles are macros over casts of global symbols; Swift cannot import them,
// so each one we use is returned by a static inline function.
static inline MPI_Comm aim_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype aim_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype aim_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype aim_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype aim_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op aim_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op aim_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op aim_mpi_min(void) { return MPI_MIN; }
static inline void *aim_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request aim_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *aim_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler aim_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int aim_mpi_success(void) { return MPI_SUCCESS; }
static inline int aim_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Datatype aim_mpi_int(void) { return MPI_INT; }
static inline MPI_Comm aim_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline int aim_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info aim_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Status *aim_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline int aim_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
