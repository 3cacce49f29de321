/* text_stub.c — keeps the swtext library non-empty before its first real
 * file lands (CMake refuses an empty library). Remove once swtext has files. */
int sw_text_library_present_;
int sw_text_library_present_ = 1;
