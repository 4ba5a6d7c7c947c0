# The BPF build pipeline (libbpf-bootstrap style), include()d by the top CMakeLists.txt:
#   bpf/NAME.bpf.c --clang -g -O2 -target bpf--> NAME.bpf.o
#                  --bpftool gen object-------> NAME.linked.o   (libbpf's static linker: BTF fix-ups)
#                  --bpftool gen skeleton-----> NAME.skel.h     (struct NAME_bpf with the object embedded;
#                                                                 not NAME: C++ has a namespace amlfw)
# The programs use uapi headers only (linux-libc-dev), no vmlinux.h: the cgroup contexts
# they read are stable ABI, so the object loads on any kernel with the probed features.
# Yields the INTERFACE target amlfw_bpf_skeletons: the include directory of every NAME.skel.h
# plus AMLFW_HAVE_BPF_SKELETONS=1. Without clang or bpftool the target is not defined and the
# eBPF backend reports at run time that it was built without its programs.

find_program(AMLFW_BPF_CLANG NAMES clang clang-14 clang-15 clang-16)
find_program(AMLFW_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin)

if(NOT AMLFW_BPF_CLANG OR NOT AMLFW_BPFTOOL)
  message(WARNING "amlfw: clang or bpftool not found: building without the eBPF backend's programs "
                  "(install them: scripts/install-deps.sh)")
  return()
endif()

set(AMLFW_BPF_OUT_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${AMLFW_BPF_OUT_DIR})
file(GLOB AMLFW_BPF_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.bpf.c)
file(GLOB AMLFW_BPF_HEADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h)

# asm/types.h and friends live in the multiarch directory on Debian.
set(AMLFW_BPF_INCLUDES -I${CMAKE_SOURCE_DIR}/bpf)
if(CMAKE_LIBRARY_ARCHITECTURE)
  list(APPEND AMLFW_BPF_INCLUDES -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()
set(AMLFW_BPF_CFLAGS -g -O2 -target bpf -Wall -Wextra -Wno-unused-parameter)
if(AMLFW_WERROR)
  list(APPEND AMLFW_BPF_CFLAGS -Werror)
endif()

set(AMLFW_BPF_SKELETONS "")
foreach(src ${AMLFW_BPF_SOURCES})
  get_filename_component(file_name ${src} NAME)
  string(REGEX REPLACE "\\.bpf\\.c$" "" name ${file_name})
  set(obj ${AMLFW_BPF_OUT_DIR}/${name}.bpf.o)
  set(linked ${AMLFW_BPF_OUT_DIR}/${name}.linked.o)
  set(skel ${AMLFW_BPF_OUT_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${AMLFW_BPF_CLANG} ${AMLFW_BPF_CFLAGS} ${AMLFW_BPF_INCLUDES} -c ${src} -o ${obj}
    COMMAND ${AMLFW_BPFTOOL} gen object ${linked} ${obj}
    COMMAND sh -c "\"$1\" gen skeleton \"$2\" name \"$3\" > \"$4.tmp\" && mv \"$4.tmp\" \"$4\""
            sh ${AMLFW_BPFTOOL} ${linked} ${name}_bpf ${skel}
    DEPENDS ${src} ${AMLFW_BPF_HEADERS}
    COMMENT "BPF: ${file_name} -> ${name}.skel.h"
    VERBATIM)
  list(APPEND AMLFW_BPF_SKELETONS ${skel})
endforeach()

add_custom_target(amlfw_bpf_skeletons_gen DEPENDS ${AMLFW_BPF_SKELETONS})
add_library(amlfw_bpf_skeletons INTERFACE)
target_include_directories(amlfw_bpf_skeletons INTERFACE ${AMLFW_BPF_OUT_DIR})
target_compile_definitions(amlfw_bpf_skeletons INTERFACE AMLFW_HAVE_BPF_SKELETONS=1)
add_dependencies(amlfw_bpf_skeletons amlfw_bpf_skeletons_gen)
