# RETORT_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on every target retort builds
# (`make test-asan` configures build-asan with it and runs the unit tests there).
#
# Included before the first target, so the flags reach all of them: the precompiled headers are
# compiled with the same flags, and they live in the sanitizer build's own directory.
# Debian's libtorch (and every other library) is not instrumented: ASan still sees its heap
# through the malloc interceptors, but not its stack or globals.
option(RETORT_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer (make test-asan)" OFF)

# Executables that link retort_lib get the sanitizers' default options compiled in (below); in a
# normal build this target is empty.
add_library(retort_sanitize INTERFACE)
set(RETORT_CCACHE_ENV "")

if(RETORT_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "RETORT_SANITIZE needs gcc or clang")
  endif()
  # -fno-sanitize-recover: any undefined behaviour fails the test that hit it. gcc leaves
  # float-cast-overflow (a double out of an integer's range, converted) out of "undefined": it
  # is added, as retort converts numbers it reads. _GLIBCXX_ASSERTIONS: libstdc++'s bounds and
  # precondition checks (operator[], front() of an empty container), which ASan cannot see
  # inside a vector's capacity; same ABI. -O1 (after the build type's -O3, so it wins) keeps
  # reports close to the source and compiles faster; -g1 gives line numbers without full debug
  # info. -Wmaybe-uninitialized: gcc documents false positives under the sanitizers (it warns
  # inside libstdc++'s <regex> here), so the warning is left to the normal build.
  set(sanitizers -fsanitize=address,undefined,float-cast-overflow)
  add_compile_options(${sanitizers} -fno-sanitize-recover=undefined,float-cast-overflow
                      -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS -O1 -g1 -Wno-maybe-uninitialized)
  add_link_options(${sanitizers})

  # The options are compiled into the executables rather than only set in make's environment,
  # so ctest's test discovery (which runs unit_tests at build time) and a test run by hand
  # behave as `make test-asan` does. ASAN_OPTIONS / UBSAN_OPTIONS still override them.
  set(RETORT_UBSAN_SUPPRESSIONS ${CMAKE_CURRENT_LIST_DIR}/ubsan_suppressions.txt)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/sanitize_defaults.cpp.in
                 ${CMAKE_BINARY_DIR}/sanitize_defaults.cpp @ONLY)
  target_sources(retort_sanitize INTERFACE ${CMAKE_BINARY_DIR}/sanitize_defaults.cpp)
  # The SentencePiece bridge keeps RTLD_DEEPBIND here (libtorch's protobuf is in these processes);
  # sanitize_defaults.cpp lets that dlopen past ASan, which refuses it otherwise.
  set_property(SOURCE src/data/sentencepiece_tokenizer.cpp APPEND PROPERTY
               COMPILE_DEFINITIONS RETORT_SANITIZE_DEEPBIND)

  # ccache keys on the flags, so sanitizer objects never hit for a normal build, but they are
  # 2-3x larger and would evict the normal build's objects: keep them in a cache of their own.
  if(DEFINED ENV{CCACHE_DIR})
    set(cache $ENV{CCACHE_DIR})
  else()
    set(cache $ENV{HOME}/.cache/ccache)
  endif()
  set(RETORT_CCACHE_ENV CCACHE_DIR=${cache}-sanitize)
endif()
