-- ================================================================
-- Migration: Add generation_logs table for prompt audit trail
-- Date: 2025-11-11
-- Author: DEF-151
-- ================================================================

CREATE TABLE generation_logs (
    -- Primary Key
    id INTEGER PRIMARY KEY AUTOINCREMENT,

    -- Link to Definitie (UNIQUE: 1 log per definitie)
    definitie_id INTEGER NOT NULL UNIQUE,

    -- ============================================================
    -- PROMPT CONTEXT (captured BEFORE API call)
    -- ============================================================

    -- Full prompt text (10KB+ typical)
    prompt_full_text TEXT NOT NULL,

    -- Template versioning
    prompt_template_version VARCHAR(50), -- e.g., "2.0", "2.1-beta"
    prompt_template_name VARCHAR(100),   -- e.g., "unified_definition_v2"

    -- Prompt modules included
    prompt_modules_used TEXT,            -- JSON array: ["base", "context", "examples", ...]

    -- ============================================================
    -- MODEL PARAMETERS (from OpenAI API request)
    -- ============================================================

    model_name VARCHAR(100) NOT NULL,    -- e.g., "gpt-4-turbo-2024-04-09"
    model_temperature DECIMAL(3,2),      -- e.g., 0.70
    model_max_tokens INTEGER,            -- e.g., 2000
    model_top_p DECIMAL(3,2),            -- e.g., 1.00
    model_frequency_penalty DECIMAL(3,2), -- e.g., 0.00
    model_presence_penalty DECIMAL(3,2),  -- e.g., 0.00

    -- ============================================================
    -- GENERATION RESULTS (captured AFTER API response)
    -- ============================================================

    -- Token usage (from response.usage)
    tokens_prompt INTEGER,               -- Input tokens
    tokens_completion INTEGER,           -- Output tokens
    tokens_total INTEGER,                -- Total tokens

    -- Performance metrics
    duration_ms INTEGER,                 -- Generation time in milliseconds

    -- Response metadata (from OpenAI response)
    response_finish_reason VARCHAR(50),  -- "stop", "length", "content_filter", etc.
    response_id VARCHAR(255),            -- OpenAI response ID (e.g., "chatcmpl-...")
    response_created_at INTEGER,         -- Unix timestamp from OpenAI

    -- Generation status
    generation_status VARCHAR(20) NOT NULL DEFAULT 'pending',
    -- Values: 'pending' (before API call), 'success', 'failed', 'timeout'

    -- Error tracking (if generation failed)
    error_message TEXT,
    error_type VARCHAR(50),              -- "api_error", "timeout", "validation_error", etc.
    error_traceback TEXT,

    -- ============================================================
    -- EXTENSIBILITY
    -- ============================================================

    -- JSON field for future metadata (system info, feature flags, etc.)
    additional_metadata TEXT,

    -- ============================================================
    -- AUDIT TRAIL
    -- ============================================================

    logged_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,

    -- ============================================================
    -- CONSTRAINTS
    -- ============================================================

    FOREIGN KEY(definitie_id) REFERENCES definities(id) ON DELETE CASCADE,

    CHECK (generation_status IN ('pending', 'success', 'failed', 'timeout')),
    CHECK (model_temperature >= 0.0 AND model_temperature <= 2.0),
    CHECK (tokens_prompt >= 0),
    CHECK (tokens_completion >= 0),
    CHECK (duration_ms >= 0)
);

-- ============================================================
-- INDEXES FOR PERFORMANCE
-- ============================================================

-- Primary lookup: Get log for a definitie
CREATE INDEX idx_generation_logs_definitie
    ON generation_logs(definitie_id);

-- Analytics: Query by timestamp
CREATE INDEX idx_generation_logs_timestamp
    ON generation_logs(logged_at);

-- Analytics: Query by model
CREATE INDEX idx_generation_logs_model
    ON generation_logs(model_name);

-- Analytics: Query by template version
CREATE INDEX idx_generation_logs_template
    ON generation_logs(prompt_template_version);

-- Debug: Find failed generations
CREATE INDEX idx_generation_logs_status
    ON generation_logs(generation_status);

-- ============================================================
-- TRIGGERS FOR UPDATED_AT
-- ============================================================

CREATE TRIGGER generation_logs_updated_at
AFTER UPDATE ON generation_logs
FOR EACH ROW
BEGIN
    UPDATE generation_logs
    SET updated_at = CURRENT_TIMESTAMP
    WHERE id = NEW.id;
END;

-- ============================================================
-- VIEWS FOR COMMON QUERIES
-- ============================================================

-- View: Definities with generation context
CREATE VIEW definities_with_generation AS
SELECT
    d.*,
    gl.prompt_template_version,
    gl.model_name,
    gl.tokens_total,
    gl.duration_ms,
    gl.generation_status,
    gl.logged_at as generated_at
FROM definities d
LEFT JOIN generation_logs gl ON d.id = gl.definitie_id
WHERE d.source_type = 'generated';

-- View: Failed generations for debugging
CREATE VIEW failed_generations AS
SELECT
    d.begrip,
    gl.error_message,
    gl.error_type,
    gl.logged_at,
    gl.prompt_full_text
FROM generation_logs gl
JOIN definities d ON gl.definitie_id = d.id
WHERE gl.generation_status = 'failed';

-- ============================================================
-- COMMENTS
-- ============================================================

-- Table purpose
COMMENT ON TABLE generation_logs IS
'Audit trail for AI-generated definitions. Stores complete prompt context,
model parameters, and response metadata for reproducibility and compliance.';

-- Column comments
COMMENT ON COLUMN generation_logs.prompt_full_text IS
'Complete prompt sent to GPT-4 including all modules. Typically 5KB-15KB.';

COMMENT ON COLUMN generation_logs.generation_status IS
'pending: Log created before API call
success: Definition generated successfully
failed: API error or validation failure
timeout: Request timed out';
