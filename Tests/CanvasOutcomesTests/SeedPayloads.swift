/// The ten example payloads of Canvas's live-event documentation (learning-outcome events), copied
/// verbatim: the contract for field names.
enum SeedPayloads {
    static let learningOutcomeCreated = #"""
{
"metadata":{
"event_name":"learning_outcome_created",
"event_time":"2019-11-05T10:03:37.526Z",
"job_id":"1020020528469291",
"job_tag":"Canvas::Migration::Worker::CourseCopyWorker#perform",
"producer":"canvas",
"root_account_id":"21070000000000001",
"root_account_lti_guid":"VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
"root_account_uuid":"VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
},
"body":{
"calculation_int":65,
"calculation_method":"highest",
"context_id":"1234",
"context_type":"Course",
"description":"Develop understanding of molecular and cell biology.",
"display_name":"Learn molecular biology",
"learning_outcome_id":"12345",
"short_description":"Molecular biology knowledge",
"title":"Molecular biology knowledge",
"vendor_guid":"1",
"workflow_state":"active",
"rubric_criterion":{
"description":"Molecular biology knowledge",
"mastery_points":2,
"points_possible":3,
"ratings":[
{
"description":"The student shows fluency.",
"points":3
},
{
"description":"The student shows proficiency.",
"points":2
},
{
"description":"The student understands the fundamentals.",
"points":1
},
{
"description":"The student does not meet the requirements.",
"points":0
}
]
}
}
}
"""#

    static let learningOutcomeGroupCreated = #"""
{
  "metadata": {
    "event_name": "learning_outcome_group_created",
    "event_time": "2019-11-01T18:42:34.373Z",
    "job_id": "1020020528469291",
    "job_tag": "OutcomeImport#run",
    "producer": "canvas",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
  },
  "body": {
    "context_id": "32054",
    "context_type": "Course",
    "description": "<h3>Outcome</h3>Hello outcome",
    "learning_outcome_group_id": "75033",
    "parent_outcome_group_id": "75032",
    "title": "Official Standards for K-12 Math Education",
    "vendor_guid": "123",
    "workflow_state": "active"
  }
}
"""#

    static let learningOutcomeGroupUpdated = #"""
{
  "metadata": {
    "event_name": "learning_outcome_group_updated",
    "event_time": "2019-11-01T13:49:07.504Z",
    "job_id": "1020020528469291",
    "job_tag": "OutcomeImport#run",
    "producer": "canvas",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
  },
  "body": {
    "context_id": "32054",
    "context_type": "Course",
    "description": "<h3>Outcome</h3>Hello outcome",
    "learning_outcome_group_id": "75033",
    "parent_outcome_group_id": "75032",
    "title": "Official Standards for K-12 Math Education",
    "updated_at": "2019-11-05T13:38:00.218Z",
    "vendor_guid": "123",
    "workflow_state": "active"
  }
}
"""#

    static let learningOutcomeLinkCreated = #"""
{
  "metadata": {
    "client_ip": "93.184.216.34",
    "context_account_id": "21070000000000079",
    "context_id": "21070000000000565",
    "context_role": "TeacherEnrollment",
    "context_sis_source_id": "2017.100.101.101-1",
    "context_type": "Course",
    "event_name": "learning_outcome_link_created",
    "event_time": "2019-11-01T19:12:01.333Z",
    "hostname": "oxana.instructure.com",
    "http_method": "POST",
    "producer": "canvas",
    "referrer": "https://oxana.instructure.com/courses/565/outcomes",
    "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
    "session_id": "ef686f8ed684abf78cbfa1f6a58112b5",
    "time_zone": "America/Sao_Paulo",
    "url": "https://oxana.instructure.com/api/v1/courses/565/outcome_groups/123456/outcomes",
    "user_account_id": "21070000000000001",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.103 Safari/537.36",
    "user_id": "21070000000000001",
    "user_login": "oxana@example.com",
    "user_sis_id": "456-T45"
  },
  "body": {
    "context_id": "565",
    "context_type": "Course",
    "learning_outcome_group_id": "123456",
    "learning_outcome_id": "1201234",
    "learning_outcome_link_id": "12345678",
    "workflow_state": "active"
  }
}
"""#

    static let learningOutcomeLinkUpdated = #"""
{
  "metadata": {
    "client_ip": "93.184.216.34",
    "context_account_id": "21070000000000079",
    "context_id": "21070000000000565",
    "context_role": "TeacherEnrollment",
    "context_sis_source_id": "2017.100.101.101-1",
    "context_type": "Course",
    "event_name": "learning_outcome_link_updated",
    "event_time": "2019-11-01T19:12:12.060Z",
    "hostname": "oxana.instructure.com",
    "http_method": "POST",
    "producer": "canvas",
    "referrer": "https://oxana.instructure.com/courses/565/outcomes",
    "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
    "session_id": "ef686f8ed684abf78cbfa1f6a58112b5",
    "time_zone": "America/Sao_Paulo",
    "url": "https://oxana.instructure.com/api/v1/courses/565/outcome_groups/1001/outcomes",
    "user_account_id": "21070000000000001",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.103 Safari/537.36",
    "user_id": "21070000000000001",
    "user_login": "oxana@example.com",
    "user_sis_id": "456-T45"
  },
  "body": {
    "context_id": "565",
    "context_type": "Course",
    "learning_outcome_group_id": "1001",
    "learning_outcome_id": "1234",
    "learning_outcome_link_id": "12345",
    "updated_at": "2019-11-01T19:12:12.060Z",
    "workflow_state": "active"
  }
}
"""#

    static let learningOutcomeResultCreated = #"""
{
  "metadata": {
    "event_name": "learning_outcome_result_created",
    "event_time": "2019-08-09T21:35:05Z",
    "job_id": "1020020528469291",
    "job_tag": "Quizzes::SubmissionGrader#update_outcomes",
    "producer": "canvas",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
  },
  "body": {
    "id": "1",
    "assessed_at": "2019-08-09T21:35:05Z",
    "attempt": 1,
    "created_at": "2019-08-09T21:35:05Z",
    "learning_outcome_id": "1",
    "learning_outcome_context_uuid": "9dewFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqp45",
    "result_context_id": "1",
    "result_context_type": "Course",
    "result_context_uuid": "c3JwFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqNNN",
    "mastery": true,
    "original_mastery": false,
    "original_possible": 5,
    "original_score": 5,
    "percent": 1,
    "possible": 5,
    "score": 5,
    "user_uuid": "elXwFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqMXM",
    "artifact_id": "22",
    "artifact_type": "RubricAssessment",
    "artifact_updated_at": "2019-08-09T21:33:05Z",
    "artifact_created_at": "2019-08-09T21:33:05Z",
    "associated_asset_id": "56",
    "associated_asset_type": "Assignment"
  }
}
"""#

    static let learningOutcomeResultUpdated = #"""
{
  "metadata": {
    "event_name": "learning_outcome_result_updated",
    "event_time": "2019-08-09T21:35:05Z",
    "job_id": "1020020528469291",
    "job_tag": "RubricAssessment#update_outcomes_for_assessment",
    "producer": "canvas",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
  },
  "body": {
    "id": "1",
    "assessed_at": "2019-08-09T21:35:05Z",
    "attempt": 1,
    "created_at": "2019-08-09T21:35:05Z",
    "learning_outcome_id": "1",
    "learning_outcome_context_uuid": "9dewFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqp45",
    "result_context_id": "1",
    "result_context_type": "Course",
    "result_context_uuid": "c3JwFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqNNN",
    "mastery": true,
    "original_mastery": false,
    "original_possible": 5,
    "original_score": 5,
    "percent": 1,
    "possible": 5,
    "score": 5,
    "updated_at": "2019-11-01T00:21:24Z",
    "user_uuid": "elXwFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqMXM",
    "artifact_id": "22",
    "artifact_type": "RubricAssessment",
    "artifact_updated_at": "2019-08-09T21:33:05Z",
    "artifact_created_at": "2019-08-09T21:33:05Z",
    "associated_asset_id": "56",
    "associated_asset_type": "Assignment"
  }
}
"""#

    static let learningOutcomeUpdated = #"""
{
  "metadata": {
    "client_ip": "93.184.216.34",
    "event_name": "learning_outcome_updated",
    "event_time": "2019-11-01T21:42:55.950Z",
    "hostname": "oxana.instructure.com",
    "http_method": "PUT",
    "producer": "canvas",
    "referrer": "https://oxana.instructure.com/courses/1234/outcomes",
    "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com",
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
    "session_id": "ef686f8ed684abf78cbfa1f6a58112b5",
    "time_zone": "America/Denver",
    "url": "https://oxana.instructure.com/api/v1/outcomes/12345",
    "user_account_id": "21070000000000001",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.103 Safari/537.36",
    "user_id": "21070000000000001",
    "user_login": "oxana@example.com",
    "user_sis_id": "456-T45"
  },
  "body": {
    "calculation_int": 65,
    "calculation_method": "highest",
    "context_id": "1234",
    "context_type": "Course",
    "description": "Develop understanding of molecular and cell biology.",
    "display_name": "Learn molecular biology",
    "learning_outcome_id": "12345",
    "short_description": "Molecular biology knowledge",
    "title": "Molecular biology knowledge",
    "updated_at": "2019-11-01T21:42:55Z",
    "vendor_guid": "1",
    "workflow_state": "active",
    "rubric_criterion": {
      "description": "Molecular biology knowledge",
      "mastery_points": 3,
      "points_possible": 5,
      "ratings": [
        {
          "description": "Exceeds Expectations",
          "points": 5
        },
        {
          "description": "Proficient",
          "points": 4
        },
        {
          "description": "Meets Expectations",
          "points": 3
        },
        {
          "description": "Nearing Expectations",
          "points": 2
        },
        {
          "description": "Developing",
          "points": 1
        },
        {
          "description": "Does Not Meet Expectations",
          "points": 0
        }
      ]
    }
  }
}
"""#

    static let outcomeProficiencyCreated = #"""
{
  "metadata": {
    "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
    "root_account_id": "21070000000000001",
    "root_account_lti_guid": "7db438071375c02373713c12c73869ff2f470b68.oxana.instructure.com",
    "user_login": "oxana@instructure.com",
    "user_account_id": "21070000000000001",
    "user_sis_id": "456-T45",
    "user_id": "21070000000000001",
    "time_zone": "America/Denver",
    "context_type": "Account",
    "context_id": "21070000000000144",
    "context_sis_source_id": "2017.100.101.101-1",
    "context_account_id": "21070000000000079",
    "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
    "session_id": "ef686f8ed684abf78cbfa1f6a58112b5",
    "hostname": "oxana.instructure.com",
    "http_method": "POST",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.103 Safari/537.36",
    "client_ip": "93.184.216.34",
    "url": "https://oxana.instructure.com/accounts/1/outcome_proficiency",
    "referrer": null,
    "producer": "canvas",
    "event_name": "outcome_proficiency_created",
    "event_time": "2020-08-18T23:28:24.396Z"
  },
  "body": {
    "outcome_proficiency_id": "1",
    "context_type": "Account",
    "context_id": "1",
    "workflow_state": "active",
    "outcome_proficiency_ratings": [
      {
        "outcome_proficiency_rating_id": "1",
        "description": "Exceeds Mastery",
        "points": 4.0,
        "mastery": false,
        "color": "02672D",
        "workflow_state": "active"
      },
      {
        "outcome_proficiency_rating_id": "2",
        "description": "Mastery",
        "points": 3.0,
        "mastery": true,
        "color": "03893D",
        "workflow_state": "active"
      },
      {
        "outcome_proficiency_rating_id": "3",
        "description": "Near Mastery",
        "points": 2.0,
        "mastery": false,
        "color": "FAB901",
        "workflow_state": "active"
      },
      {
        "outcome_proficiency_rating_id": "4",
        "description": "Below Mastery",
        "points": 1.0,
        "mastery": false,
        "color": "FD5D10",
        "workflow_state": "active"
      },
      {
        "outcome_proficiency_rating_id": "5",
        "description": "Well Below Mastery",
        "points": 0.0,
        "mastery": false,
        "color": "E62429",
        "workflow_state": "active"
      }
    ]
  }
}
"""#

    static let outcomeProficiencyUpdated = #"""
{
"metadata":{
"root_account_uuid":"VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
"root_account_id":"21070000000000001",
"root_account_lti_guid":"7db438071375c02373713c12c73869ff2f470b68.oxana.instructure.com",
"user_login":"oxana@instructure.com",
"user_account_id":"21070000000000001",
"user_sis_id":"456-T45",
"user_id":"21070000000000001",
"time_zone":"America/Denver",
"context_type":"Account",
"context_id":"21070000000000144",
"context_sis_source_id":"2017.100.101.101-1",
"context_account_id":"21070000000000079",
"request_id":"1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
"session_id":"ef686f8ed684abf78cbfa1f6a58112b5",
"hostname":"oxana.instructure.com",
"http_method":"POST",
"user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.103 Safari/537.36",
"client_ip":"93.184.216.34",
"url":"https://oxana.instructure.com/accounts/1/outcome_proficiency",
"referrer":null,
"producer":"canvas",
"event_name":"outcome_proficiency_updated",
"event_time":"2020-08-18T23:28:24.396Z"
},
"body":{
"outcome_proficiency_id":"1",
"context_type":"Account",
"context_id":"1",
"workflow_state":"active",
"updated_at":"2020-08-18T17:24:46-06:00",
"outcome_proficiency_ratings":[
{
"outcome_proficiency_rating_id":"1",
"description":"Exceeds Mastery",
"points":4.0,
"mastery":false,
"color":"02672D",
"workflow_state":"active"
},
{
"outcome_proficiency_rating_id":"2",
"description":"Mastery",
"points":3.0,
"mastery":true,
"color":"03893D",
"workflow_state":"active"
},
{
"outcome_proficiency_rating_id":"3",
"description":"Near Mastery",
"points":2.0,
"mastery":false,
"color":"FAB901",
"workflow_state":"active"
},
{
"outcome_proficiency_rating_id":"4",
"description":"Below Mastery",
"points":1.0,
"mastery":false,
"color":"FD5D10",
"workflow_state":"active"
},
{
"outcome_proficiency_rating_id":"5",
"description":"Well Below Mastery",
"points":0.0,
"mastery":false,
"color":"E62429",
"workflow_state":"active"
}
]
}
}
"""#

    static let all: [(name: String, json: String)] = [
        ("learning_outcome_created", learningOutcomeCreated),
        ("learning_outcome_group_created", learningOutcomeGroupCreated),
        ("learning_outcome_group_updated", learningOutcomeGroupUpdated),
        ("learning_outcome_link_created", learningOutcomeLinkCreated),
        ("learning_outcome_link_updated", learningOutcomeLinkUpdated),
        ("learning_outcome_result_created", learningOutcomeResultCreated),
        ("learning_outcome_result_updated", learningOutcomeResultUpdated),
        ("learning_outcome_updated", learningOutcomeUpdated),
        ("outcome_proficiency_created", outcomeProficiencyCreated),
        ("outcome_proficiency_updated", outcomeProficiencyUpdated),
    ]
}
