# libFuzzer targets for every reader of outside bytes (tests/fuzz/fuzz_<name>.cpp, seed corpora in
# tests/fuzz/corpus/<name>/), included from tests/CMakeLists.txt. Built one of two ways:
#   RETORT_FUZZ=ON (clang 14; `make fuzz` configures build-fuzz): each target with libFuzzer,
#     AddressSanitizer and UndefinedBehaviorSanitizer. The readers the targets call are compiled
#     here, with the same sanitizers and coverage, into retort_fuzz_plain and retort_fuzz_torch:
#     only those sources, not the whole library. `ctest -L fuzz` there replays each corpus under the sanitizers.
#   otherwise (the normal build): each target with tests/fuzz/replay_main.cpp against retort_lib,
#     registered as fuzz.<name> (label fuzz): its corpus replayed, a regression test of seconds.
option(RETORT_FUZZ "Build the libFuzzer targets with clang (make fuzz, build-fuzz)" OFF)

set(RETORT_FUZZ_TARGETS idx safetensors gguf topk_cache logit_cache tokenizer config openai_schema api_answers)
set(fuzz_dir ${CMAKE_SOURCE_DIR}/tests/fuzz)

if(RETORT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "RETORT_FUZZ needs clang for libFuzzer: -DCMAKE_CXX_COMPILER=clang++-14 (make fuzz does this)")
  endif()
  # The readers, and what they call in turn, in two libraries: the tokenizer target must not load
  # libtorch, whose protobuf clashes with the one bundled in the SentencePiece bridge, which a
  # sanitized process opens without RTLD_DEEPBIND (src/data/sentencepiece_tokenizer.cpp).
  set(fuzz_plain_sources
      core/base64.cpp core/config.cpp core/fs.cpp core/hash.cpp
      data/sentencepiece_tokenizer.cpp data/token_strings.cpp data/tokenizer.cpp
      serve/openai_schema.cpp teachers/api_answers.cpp)
  set(fuzz_torch_sources
      data/idx.cpp
      distill/config_schema.cpp distill/divergence.cpp distill/divergence_rows.cpp distill/divergence_table.cpp
      distill/objective.cpp
      formats/gguf_io.cpp formats/safetensors_io.cpp
      teachers/logit_cache_file.cpp teachers/topk_cache.cpp teachers/topk_cache_format.cpp teachers/topk_cache_writer.cpp)
  set(fuzz_plain_targets tokenizer openai_schema api_answers)
  list(TRANSFORM fuzz_plain_sources PREPEND ${CMAKE_SOURCE_DIR}/src/)
  list(TRANSFORM fuzz_torch_sources PREPEND ${CMAKE_SOURCE_DIR}/src/)
  # -O1 -g: reports close to the source; any undefined behaviour stops the run as a crash does.
  set(fuzz_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g)

  add_library(retort_fuzz_plain STATIC ${fuzz_plain_sources})
  target_include_directories(retort_fuzz_plain PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(retort_fuzz_plain PUBLIC nlohmann_json::nlohmann_json tomlplusplus::tomlplusplus
                        ZLIB::ZLIB ${CMAKE_DL_LIBS})
  target_compile_options(retort_fuzz_plain PUBLIC ${fuzz_sanitizers} PRIVATE -fsanitize=fuzzer-no-link)
  target_compile_definitions(retort_fuzz_plain PRIVATE
                             RETORT_SENTENCEPIECE_BRIDGE="$<TARGET_FILE:retort_sentencepiece>")
  add_dependencies(retort_fuzz_plain retort_sentencepiece)

  add_library(retort_fuzz_torch STATIC ${fuzz_torch_sources})
  target_link_libraries(retort_fuzz_torch PUBLIC retort_fuzz_plain ${TORCH_LIBRARIES})
  target_compile_options(retort_fuzz_torch PRIVATE -fsanitize=fuzzer-no-link)

  add_custom_target(fuzz_targets)
  foreach(name ${RETORT_FUZZ_TARGETS})
    add_executable(fuzz_${name} ${fuzz_dir}/fuzz_${name}.cpp)
    if(name IN_LIST fuzz_plain_targets)
      target_link_libraries(fuzz_${name} PRIVATE retort_fuzz_plain)
    else()
      target_link_libraries(fuzz_${name} PRIVATE retort_fuzz_torch)
    endif()
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    add_dependencies(fuzz_targets fuzz_${name})
    add_test(NAME fuzz.${name} COMMAND fuzz_${name} -runs=0 ${fuzz_dir}/corpus/${name})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  endforeach()
else()
  foreach(name ${RETORT_FUZZ_TARGETS})
    add_executable(fuzz_${name} ${fuzz_dir}/fuzz_${name}.cpp ${fuzz_dir}/replay_main.cpp)
    target_link_libraries(fuzz_${name} PRIVATE retort_lib)
    target_include_directories(fuzz_${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
    target_precompile_headers(fuzz_${name} REUSE_FROM retort_lib)
    add_test(NAME fuzz.${name} COMMAND fuzz_${name} ${fuzz_dir}/corpus/${name})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 120)
  endforeach()
  # The binary seeds, made by retort's own writers (not run by ctest):
  #   cmake --build build --target fuzz_seeds && build/tests/fuzz_seeds tests/fuzz/corpus
  add_executable(fuzz_seeds EXCLUDE_FROM_ALL ${fuzz_dir}/make_seeds.cpp)
  target_link_libraries(fuzz_seeds PRIVATE retort_lib ZLIB::ZLIB)
  target_include_directories(fuzz_seeds PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_precompile_headers(fuzz_seeds REUSE_FROM retort_lib)
endif()
