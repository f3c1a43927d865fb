// ApiTopkTeacher: an openai: teacher's answers, read back from the top-k cache its harvest filled.
#include "retort/api_teacher.h"
#include "retort/error.h"

namespace retort {

ApiTopkTeacher::ApiTopkTeacher(TopkCache cache, std::string description)
    : cache_(std::move(cache)), description_(std::move(description)) {}

TeacherSignal ApiTopkTeacher::signal(const Batch& batch) {
  if (batch.augmented)
    fail("the openai: teacher answers only the training windows it was asked about beforehand; ",
         "this batch was generated (distill.on_policy) or augmented");
  return cache_.rows(batch.index);
}

}  // namespace retort
